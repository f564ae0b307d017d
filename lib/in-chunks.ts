/**
 * Runs `work` over many items a few at a time: a store read per item in
 * parallel, without sending thousands of requests to the engine at once.
 */
export async function inChunks<T, R>(items: readonly T[], work: (item: T) => Promise<R>, width = 32): Promise<R[]> {
	const out: R[] = [];
	for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(work))));
	return out;
}
