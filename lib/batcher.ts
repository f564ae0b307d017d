/**
 * Collects work submitted while a flush is pending or running and hands it to
 * `flush` as one batch: group commit for messages, coalesced receipt writes,
 * one broker call per node for fan-out. At most one flush runs at a time, so
 * batches are applied in submission order.
 */
export interface BatcherOptions {
	/** How long the first item of a batch may wait for company; 0 = next turn of the event loop. */
	delayMs: number;
	/** A batch never exceeds this many items. */
	maxItems: number;
}

type Waiter<T, R> = { item: T; resolve: (r: R) => void; reject: (e: unknown) => void };

/** `flush` returns one result per item, in order; an Error result rejects only that item. */
export type FlushFn<T, R> = (items: T[]) => Promise<(R | Error)[]> | (R | Error)[];

export class Batcher<T, R> {
	private queue: Waiter<T, R>[] = [];
	private scheduled = false;
	private running = false;

	constructor(
		private readonly flushFn: FlushFn<T, R>,
		private readonly options: BatcherOptions,
	) {}

	submit(item: T): Promise<R> {
		return new Promise<R>((resolve, reject) => {
			this.queue.push({ item, resolve, reject });
			this.schedule();
		});
	}

	get pending(): number {
		return this.queue.length;
	}

	/** Flushes everything queued now (used on shutdown). */
	async drain(): Promise<void> {
		while (this.queue.length > 0 || this.running) {
			if (!this.running) await this.runOnce();
			else await new Promise((r) => setImmediate(r));
		}
	}

	private schedule(): void {
		if (this.scheduled || this.running) return;
		this.scheduled = true;
		const run = () => {
			this.scheduled = false;
			void this.runOnce();
		};
		if (this.options.delayMs > 0) setTimeout(run, this.options.delayMs);
		else setImmediate(run);
	}

	private async runOnce(): Promise<void> {
		if (this.running || this.queue.length === 0) return;
		this.running = true;
		const batch = this.queue.splice(0, this.options.maxItems);
		try {
			const results = await this.flushFn(batch.map((w) => w.item));
			batch.forEach((w, i) => {
				const r = results[i];
				if (r instanceof Error) w.reject(r);
				else w.resolve(r as R);
			});
		} catch (err) {
			for (const w of batch) w.reject(err);
		} finally {
			this.running = false;
			if (this.queue.length > 0) this.schedule();
		}
	}
}
