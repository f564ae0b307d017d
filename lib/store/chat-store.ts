/**
 * The storage interface every engine implements (SQLite embedded, Cassandra in
 * production). Services depend on this, never on an engine. Each engine must
 * pass the suite in tests/support/store-behaviour.ts.
 */
import type { Message } from "../../contract";

export interface ConversationRecord {
	id: string;
	listingId: string;
	listingTitle: string | null;
	buyerId: string;
	sellerId: string;
	createdAt: number;
	lastSeq: number;
	lastActivityAt: number;
	/** The last number of the conversation's change sequence (edits and deletes). */
	lastChangeSeq: number;
}

export interface MemberRecord {
	conversationId: string;
	userId: string;
	role: "buyer" | "seller";
	delivered: number;
	read: number;
	/** Messages this member has sent, and how many of them are at or below `read`: unread needs both. */
	sentCount: number;
	sentUpToRead: number;
}

export interface Membership {
	conversationId: string;
	lastSeq: number;
	/** The conversation's last change (edit or delete) number: 0 if none. */
	lastChangeSeq: number;
	/** The member's last activity in it (ms): its place in the inbox. */
	lastActivityAt: number;
}

export interface InboxEntry {
	conversation: ConversationRecord;
	member: MemberRecord;
	lastMessage: Message | null;
}

export interface OpenConversation {
	id: string;
	listingId: string;
	listingTitle: string | null;
	buyerId: string;
	sellerId: string;
	now: number;
}

export interface AppendRequest {
	id: string;
	conversationId: string;
	senderId: string;
	clientMsgId: string;
	type: Message["type"];
	text: string;
	attachments: unknown[];
	now: number;
}

export interface AppendResult {
	message: Message;
	/** True when (sender, clientMsgId) already existed: `message` is the original. */
	duplicate: boolean;
	/** The conversation and its members as they stand after the write (for unread and fan-out). */
	conversation: ConversationRecord;
	members: MemberRecord[];
}

/** An edit (text) or a delete (text null) of a message, by its sender. */
export interface ChangeRequest {
	conversationId: string;
	seq: number;
	editorId: string;
	text: string | null;
	now: number;
}

export interface ChangeResult {
	/** The message as it stands after the change. */
	message: Message;
	/** False when it changed nothing (the same text again, a delete of a deleted message): no event is due. */
	changed: boolean;
	conversation: ConversationRecord;
	members: MemberRecord[];
}

export interface ChangesPage {
	messages: Message[];
	/** through[i]: the change number that messages[0..i] cover, for a page cut after message i. */
	through: number[];
	upTo: number;
}

export interface WatermarkUpdate {
	conversationId: string;
	userId: string;
	delivered: number;
	read: number;
}

export interface WatermarkResult {
	member: MemberRecord;
	lastSeq: number;
	/** False when the update moved nothing (late or duplicate receipt). */
	changed: boolean;
	/** The read mark moved, so the member's unread count changed. */
	readChanged: boolean;
}

export interface HistoryQuery {
	beforeSeq?: number;
	afterSeq?: number;
	limit: number;
}

export interface InboxPage {
	entries: InboxEntry[];
	/** Opaque cursor for the next (older) page, absent on the last page. */
	next?: string;
}

/**
 * A transactional outbox for a search engine that must be fed (Elasticsearch):
 * every append also records the message here, in the same write, so an index
 * outage delays search results but never loses them.
 */
export interface SearchFeed {
	/** Messages not yet confirmed by the index, oldest first. */
	backlog(limit: number): Promise<{ key: string; message: Message }[]>;
	confirm(keys: string[]): Promise<void>;
	/** Every conversation id, in pages (for a full reindex). */
	conversationIds(limit: number, after?: string): Promise<string[]>;
}

/** Where an engine reports what it recovered from (the owning service's logger). */
export interface EngineLog {
	warn(message: string): void;
}

export interface ChatStore {
	readonly engine: string;
	/** Present when the store was opened for a search engine that must be fed. */
	readonly searchFeed?: SearchFeed;
	open(log?: EngineLog): Promise<void>;
	close(): Promise<void>;

	/** A random secret made on first use and kept forever (it keys conversation ids). */
	deploymentSecret(): Promise<string>;

	/** Creates the conversation and its two members unless it exists; returns it either way. */
	openConversation(req: OpenConversation): Promise<{ conversation: ConversationRecord; created: boolean }>;
	getConversation(id: string): Promise<ConversationRecord | null>;
	members(conversationId: string): Promise<MemberRecord[]>;
	/** The user's conversations (the ones `memberships` lists), newest activity first. */
	inbox(userId: string, limit: number, before?: string): Promise<InboxPage>;
	inboxEntry(userId: string, conversationId: string): Promise<InboxEntry | null>;
	/**
	 * The conversations the user sees, with last seq and activity (for sync and search). Like the
	 * inbox: every conversation the user opened, and one opened with them once it has a message,
	 * so nobody can fill another user's inbox with empty conversations.
	 */
	memberships(userId: string): Promise<Membership[]>;
	/**
	 * Users who have exchanged messages with the user (both sent at least one in a shared
	 * conversation): they may see each other's presence. Opening a conversation is not enough.
	 */
	contactsOf(userId: string, limit: number): Promise<string[]>;

	/**
	 * Durably appends a message with the next seq of its conversation, or
	 * returns the original if (senderId, clientMsgId) exists. Resolves only after
	 * the commit. Rejects with NOT_FOUND / CONFLICT errors.
	 */
	appendMessage(req: AppendRequest): Promise<AppendResult>;
	/**
	 * Edits or deletes a stored message, durably, giving the change the next number of the
	 * conversation's change sequence (dense, like seq). Only the sender may change a message;
	 * a deleted message stays deleted. Rejects with NOT_FOUND / FORBIDDEN / CONFLICT errors.
	 */
	changeMessage(req: ChangeRequest): Promise<ChangeResult>;
	/**
	 * What a device holding messages up to `uptoSeq` missed since change `afterChangeSeq`: each
	 * message (seq <= uptoSeq) changed after it, once, as it stands now, in change order, at most
	 * `limit`; and `upTo`, the change number everything returned covers (all changes after
	 * `afterChangeSeq` up to it are in `messages` or superseded there). The device's next cursor.
	 */
	changesAfter(conversationId: string, afterChangeSeq: number, uptoSeq: number, limit: number): Promise<ChangesPage>;
	history(conversationId: string, query: HistoryQuery): Promise<Message[]>;
	/** Messages with seq > afterSeq, ascending, at most `limit`. */
	messagesAfter(conversationId: string, afterSeq: number, limit: number): Promise<Message[]>;

	/**
	 * Forward-only: each watermark becomes max(stored, given), clamped to the
	 * conversation's last seq; read implies delivered. One write per entry.
	 * Returns each member as it stands afterwards (null if not a member).
	 */
	saveWatermarks(updates: WatermarkUpdate[]): Promise<(WatermarkResult | null)[]>;
}
