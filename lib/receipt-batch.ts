/**
 * Receipt marks collected during one flush window, coalesced so the store is
 * written at most once per (conversation, member) per flush (design target T7).
 * Watermarks only move forward, so the one write carries the highest delivered
 * and read marks asked for, and every caller is answered with that write's result.
 */
import type { WatermarkUpdate } from "./store/chat-store";

export interface CoalescedMarks {
	/** One update per (conversationId, userId), in the order each key first appeared. */
	writes: WatermarkUpdate[];
	/** For each mark, in the order given: the index in `writes` whose result answers it. */
	answeredBy: number[];
}

export function coalesceMarks(marks: readonly WatermarkUpdate[]): CoalescedMarks {
	const writes: WatermarkUpdate[] = [];
	const slotOf = new Map<string, number>();
	const answeredBy = marks.map((m) => {
		const key = `${m.conversationId}\u0000${m.userId}`;
		const slot = slotOf.get(key);
		if (slot === undefined) {
			slotOf.set(key, writes.length);
			writes.push({ conversationId: m.conversationId, userId: m.userId, delivered: m.delivered, read: m.read });
			return writes.length - 1;
		}
		const w = writes[slot]!;
		w.delivered = Math.max(w.delivered, m.delivered);
		w.read = Math.max(w.read, m.read);
		return slot;
	});
	return { writes, answeredBy };
}
