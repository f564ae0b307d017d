/**
 * One page of messages.sync: every message after the device's cursors (no cap on
 * the gap, across as many pages as it takes), summaries of conversations the
 * device has not seen, and the latest watermarks. Each part has a budget, so one
 * answer stays small however many conversations a user has; `more` says call again.
 *
 * Progress needs no token: messages advance the cursors, and a summary makes the
 * conversation known (cursor 0), so the next call starts where this one stopped.
 */
import type { ConversationSummary, Message, ReceiptUpdate, ResultOf } from "../contract";
import type { ChangesPage, Membership } from "./store/chat-store";

export interface SyncBudget {
	/** Messages per page (the caller's `limit`). */
	messages: number;
	/** Characters of message text per page: a page of long messages stops early. */
	textChars: number;
	/** Summaries of unseen conversations per page. */
	summaries: number;
	/** Watermarks come for this many most recently active conversations (older ones: conversations.get). */
	receiptConversations: number;
}

export interface SyncSources {
	messagesAfter(conversationId: string, afterSeq: number, limit: number): Promise<Message[]>;
	changesAfter(conversationId: string, afterChangeSeq: number, uptoSeq: number, limit: number): Promise<ChangesPage>;
	summaries(conversationIds: string[]): Promise<ConversationSummary[]>;
	receipts(conversationIds: string[]): Promise<ReceiptUpdate[]>;
}

/** The answer of messages.sync, as the contract defines it. */
export type SyncPage = ResultOf<"messages.sync">;

/**
 * `changeCursors` ({conversationId: last change applied}) asks for the edits and deletes of
 * messages the device holds; without it (a 1.0 client) none are sent. Changes and messages
 * share the page's budgets, changes first.
 */
export async function buildSyncPage(
	memberships: Membership[],
	cursors: Record<string, number>,
	budget: SyncBudget,
	sources: SyncSources,
	changeCursors?: Record<string, number>,
): Promise<SyncPage> {
	// A stable order, so paging always makes progress.
	const sorted = [...memberships].sort((a, b) => (a.conversationId < b.conversationId ? -1 : a.conversationId > b.conversationId ? 1 : 0));
	const known = (id: string) => Object.hasOwn(cursors, id);
	const unseen = sorted.filter((m) => !known(m.conversationId));
	const unseenNow = new Set(unseen.slice(0, budget.summaries).map((m) => m.conversationId));
	let more = unseen.length > unseenNow.size;

	let remaining = budget.messages;
	let textLeft = budget.textChars;
	/** The longest prefix of `fetched` within the text budget (at least one item, so a page always progresses). */
	const withinText = (fetched: Message[], taken: number): Message[] => {
		const batch: Message[] = [];
		for (const m of fetched) {
			if (taken + batch.length > 0 && textLeft < m.text.length) break;
			textLeft -= m.text.length;
			batch.push(m);
		}
		return batch;
	};

	const changes: Message[] = [];
	const changesUpTo: Record<string, number> = {};
	for (const { conversationId, lastChangeSeq } of changeCursors ? sorted : []) {
		const held = known(conversationId) ? cursors[conversationId]! : 0;
		const after = Object.hasOwn(changeCursors!, conversationId) ? changeCursors![conversationId]! : 0;
		if (lastChangeSeq <= after) continue;
		// Holding none of its messages, the device gets them all read after `memberships` was: they show
		// every change up to its lastChangeSeq, so the change cursor starts there.
		if (held === 0) {
			changesUpTo[conversationId] = lastChangeSeq;
			continue;
		}
		if (remaining === 0) {
			more = true;
			continue;
		}
		const page = await sources.changesAfter(conversationId, after, held, remaining);
		const batch = withinText(page.messages, changes.length);
		// Cut by the text budget: the cursor may only pass what this page gives.
		const upTo = batch.length < page.messages.length ? page.through[batch.length - 1]! : page.upTo;
		if (upTo > after) changesUpTo[conversationId] = upTo;
		// Changes may be left (a full page, a cut, or a change still landing): ask again with the moved cursor.
		if (upTo < lastChangeSeq && (page.messages.length === remaining || batch.length < page.messages.length)) more = true;
		changes.push(...batch);
		remaining -= batch.length;
	}

	const messages: Message[] = [];
	for (const { conversationId, lastSeq } of sorted) {
		// An unseen conversation's messages come with (or after) its summary.
		if (!known(conversationId) && !unseenNow.has(conversationId)) continue;
		// Unseen conversations start from the beginning: nothing created while offline is lost.
		const cursor = known(conversationId) ? cursors[conversationId]! : 0;
		if (lastSeq <= cursor) continue;
		if (remaining === 0) {
			more = true;
			continue;
		}
		const fetched = await sources.messagesAfter(conversationId, cursor, remaining);
		const batch = withinText(fetched, messages.length + changes.length);
		if (batch.length < fetched.length) remaining = batch.length;
		messages.push(...batch);
		remaining -= batch.length;
		const reached = batch.length > 0 ? batch[batch.length - 1]!.seq : cursor;
		if (reached < lastSeq) more = true;
	}

	// Watermarks come once, with the last page, for the conversations that moved most recently.
	const recent = more ? [] : [...sorted].sort((a, b) => b.lastActivityAt - a.lastActivityAt).slice(0, budget.receiptConversations);
	const [receipts, conversations] = await Promise.all([
		recent.length > 0 ? sources.receipts(recent.map((m) => m.conversationId)) : Promise.resolve([]),
		unseenNow.size > 0 ? sources.summaries([...unseenNow]) : Promise.resolve([]),
	]);
	return changeCursors ? { messages, receipts, conversations, more, changes, changesUpTo } : { messages, receipts, conversations, more };
}
