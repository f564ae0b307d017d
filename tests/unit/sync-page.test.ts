/**
 * messages.sync paging without a server: every budget holds, and calling again
 * with the advanced cursors (as a client does) reaches everything exactly once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ConversationSummary, Message, ReceiptUpdate } from "../../contract";
import type { ChangesPage, Membership } from "../../lib/store/chat-store";
import { buildSyncPage, type SyncBudget } from "../../lib/sync-page";

/** A user in `count` conversations of `perConversation` messages each; `edits` changes (seq, text) per conversation. */
function world(count: number, perConversation: number, textOf = (_seq: number) => "hello", edits: [number, string][] = []) {
	const memberships: Membership[] = Array.from({ length: count }, (_, i) => ({
		conversationId: `c${String(i).padStart(5, "0")}`,
		lastSeq: perConversation,
		lastChangeSeq: edits.length,
		lastActivityAt: 1000 + i,
	}));
	const calls = { summaries: [] as string[][], receipts: [] as string[][], changes: [] as string[] };
	const sources = {
		async messagesAfter(conversationId: string, afterSeq: number, limit: number): Promise<Message[]> {
			const out: Message[] = [];
			for (let seq = afterSeq + 1; seq <= perConversation && out.length < limit; seq++) {
				out.push({ id: `${conversationId}-${seq}`, conversationId, seq, senderId: "peer", clientMsgId: `m${seq}`, type: "text", text: textOf(seq), attachments: [], createdAt: "" });
			}
			return out;
		},
		/** As the stores do: each changed message once, as it stands, in change order, with the cursor it covers. */
		async changesAfter(conversationId: string, after: number, upto: number, limit: number): Promise<ChangesPage> {
			const latest = new Map<number, number>();
			edits.forEach(([seq], i) => {
				if (i + 1 <= after || seq > upto) return;
				latest.delete(seq);
				latest.set(seq, i + 1);
			});
			const inOrder = [...latest].sort((a, b) => a[1] - b[1]);
			const taken = inOrder.slice(0, limit);
			const messages = taken.map(([seq, change]) => {
				const text = edits.filter(([s]) => s === seq).at(-1)![1];
				return { id: `${conversationId}-${seq}`, conversationId, seq, senderId: "peer", clientMsgId: `m${seq}`, type: "text", text, attachments: [], createdAt: "", changeSeq: change } as Message;
			});
			calls.changes.push(conversationId);
			return { messages, through: taken.map(([, c]) => c), upTo: taken.length < inOrder.length ? taken.at(-1)![1] : edits.length };
		},
		async summaries(ids: string[]): Promise<ConversationSummary[]> {
			calls.summaries.push(ids);
			return ids.map((id) => ({ id }) as ConversationSummary);
		},
		async receipts(ids: string[]): Promise<ReceiptUpdate[]> {
			calls.receipts.push(ids);
			return ids.map((conversationId) => ({ conversationId, userId: "peer", delivered: 1, read: 1 }));
		},
	};
	return { memberships, sources, calls };
}

const budget: SyncBudget = { messages: 1000, textChars: 500_000, summaries: 100, receiptConversations: 50 };

/** What ParleyClient does: apply the page to its cursors and call again while `more`. */
async function syncToTheEnd(w: ReturnType<typeof world>, cursors: Record<string, number>, b = budget) {
	const seen = new Map<string, number[]>();
	const pages = [];
	for (;;) {
		const page = await buildSyncPage(w.memberships, cursors, b, w.sources);
		pages.push(page);
		for (const c of page.conversations) cursors[c.id] ??= 0;
		for (const m of page.messages) {
			seen.set(m.conversationId, [...(seen.get(m.conversationId) ?? []), m.seq]);
			cursors[m.conversationId] = m.seq;
		}
		if (!page.more) return { pages, seen };
		assert.ok(pages.length < 1000, "paging makes progress");
	}
}

describe("messages.sync pages", () => {
	it("a new device of a user in 350 conversations gets every summary and message once, 100 summaries a page at most", async () => {
		const w = world(350, 3);
		const { pages, seen } = await syncToTheEnd(w, {});
		assert.ok(pages.every((p) => p.conversations.length <= 100));
		assert.equal(pages.flatMap((p) => p.conversations).length, 350);
		assert.equal(seen.size, 350);
		for (const seqs of seen.values()) assert.deepEqual(seqs, [1, 2, 3]);
	});

	it("watermarks come once, on the last page, for the most recently active conversations only", async () => {
		const w = world(350, 3);
		const { pages } = await syncToTheEnd(w, {});
		assert.ok(pages.slice(0, -1).every((p) => p.receipts.length === 0));
		const last = pages[pages.length - 1]!;
		assert.equal(last.receipts.length, 50);
		assert.deepEqual(new Set(last.receipts.map((r) => r.conversationId)), new Set(w.memberships.slice(-50).map((m) => m.conversationId)));
		assert.equal(w.calls.receipts.length, 1, "the store is asked once, not once per page");
	});

	it("a long gap is paged by the message limit and by the text budget, with no gap and no repeat", async () => {
		const w = world(3, 2500, (seq) => (seq % 10 === 0 ? "x".repeat(4000) : "short"));
		const cursors = { c00000: 0, c00001: 100, c00002: 2500 };
		const { pages, seen } = await syncToTheEnd(w, cursors, { ...budget, messages: 700, textChars: 100_000 });
		for (const p of pages) {
			assert.ok(p.messages.length <= 700);
			assert.ok(p.messages.reduce((n, m) => n + m.text.length, 0) <= 100_000 + 4000);
		}
		assert.deepEqual(seen.get("c00000"), Array.from({ length: 2500 }, (_, i) => i + 1));
		assert.deepEqual(seen.get("c00001"), Array.from({ length: 2400 }, (_, i) => i + 101));
		assert.equal(seen.get("c00002"), undefined, "an up-to-date conversation sends nothing");
	});

	it("a device that is up to date gets one small page", async () => {
		const w = world(20, 5);
		const cursors = Object.fromEntries(w.memberships.map((m) => [m.conversationId, 5]));
		const page = await buildSyncPage(w.memberships, cursors, budget, w.sources);
		assert.deepEqual([page.messages.length, page.conversations.length, page.more], [0, 0, false]);
		assert.equal(page.receipts.length, 20);
	});

	it("edits are paged by the limit and the text budget; the change cursor never passes one it did not give; each changed message comes once", async () => {
		// 40 edits over messages 1..10 of each conversation, some long; the device holds messages up to 8.
		const edits: [number, string][] = Array.from({ length: 40 }, (_, i) => [(i % 10) + 1, i % 7 === 0 ? "y".repeat(30_000) : `edit ${i + 1}`]);
		const w = world(2, 10, () => "hello", edits);
		const cursors = { c00000: 8, c00001: 8 };
		const changeCursors: Record<string, number> = {};
		const got = new Map<string, Map<number, number>>();
		for (let pages = 0; ; pages++) {
			const page = await buildSyncPage(w.memberships, cursors, { ...budget, messages: 3, textChars: 50_000 }, w.sources, changeCursors);
			assert.ok(page.changes!.length <= 3);
			for (const m of page.changes!) {
				const seen = got.get(m.conversationId) ?? new Map<number, number>();
				seen.set(m.seq, m.changeSeq!);
				got.set(m.conversationId, seen);
			}
			for (const [id, upTo] of Object.entries(page.changesUpTo!)) {
				assert.ok(upTo >= (changeCursors[id] ?? 0), "the cursor only moves forward");
				changeCursors[id] = upTo;
			}
			for (const m of page.messages) cursors[m.conversationId as "c00000"] = m.seq;
			if (!page.more) break;
			assert.ok(pages < 200, "paging makes progress");
		}
		for (const id of ["c00000", "c00001"]) {
			// Messages 1..8 end with their last edits (31..38); 9 and 10 came fresh as messages.
			assert.deepEqual([...got.get(id)!].sort((a, b) => a[0] - b[0]), Array.from({ length: 8 }, (_, i) => [i + 1, 31 + i]));
			assert.equal(changeCursors[id], 40);
		}
	});

	it("a 1.0 client that sends no change cursors gets no changes field and no change reads", async () => {
		const w = world(3, 5, () => "hello", [[1, "edited"]]);
		const page = await buildSyncPage(w.memberships, { c00000: 5, c00001: 5, c00002: 5 }, budget, w.sources);
		assert.equal(page.changes, undefined);
		assert.deepEqual(w.calls.changes, []);
	});
});
