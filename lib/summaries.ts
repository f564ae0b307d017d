/** Turns store records into the contract's shapes. */
import type { Conversation, ConversationSummary } from "../contract";
import type { ConversationRecord, InboxEntry, MemberRecord } from "./store/chat-store";
import { unreadCount } from "./unread";

/** The fields a conversation and its inbox summary share. */
function conversationFields(c: ConversationRecord) {
	return {
		id: c.id,
		listingId: c.listingId,
		listingTitle: c.listingTitle,
		buyerId: c.buyerId,
		sellerId: c.sellerId,
		lastSeq: c.lastSeq,
		lastActivityAt: new Date(c.lastActivityAt).toISOString(),
	};
}

export function conversationView(c: ConversationRecord, members: MemberRecord[]): Conversation {
	return {
		...conversationFields(c),
		createdAt: new Date(c.createdAt).toISOString(),
		members: members.map((m) => ({ userId: m.userId, role: m.role, delivered: m.delivered, read: m.read })),
	};
}

export function summaryView(entry: InboxEntry): ConversationSummary {
	return {
		...conversationFields(entry.conversation),
		lastMessage: entry.lastMessage,
		unread: unreadCount(entry.conversation.lastSeq, entry.member),
	};
}
