/** Turns store records into the contract's shapes. */
import type { Conversation, ConversationSummary } from "../contract";
import type { ConversationRecord, InboxEntry, MemberRecord } from "./store/chat-store";
import { unreadCount } from "./unread";

export function conversationView(c: ConversationRecord, members: MemberRecord[]): Conversation {
	return {
		id: c.id,
		listingId: c.listingId,
		listingTitle: c.listingTitle,
		buyerId: c.buyerId,
		sellerId: c.sellerId,
		createdAt: new Date(c.createdAt).toISOString(),
		lastSeq: c.lastSeq,
		lastActivityAt: new Date(c.lastActivityAt).toISOString(),
		members: members.map((m) => ({ userId: m.userId, role: m.role, delivered: m.delivered, read: m.read })),
	};
}

export function summaryView(entry: InboxEntry): ConversationSummary {
	const c = entry.conversation;
	return {
		id: c.id,
		listingId: c.listingId,
		listingTitle: c.listingTitle,
		buyerId: c.buyerId,
		sellerId: c.sellerId,
		lastSeq: c.lastSeq,
		lastActivityAt: new Date(c.lastActivityAt).toISOString(),
		lastMessage: entry.lastMessage,
		unread: unreadCount(c.lastSeq, entry.member),
	};
}
