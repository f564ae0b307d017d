/**
 * Parley client contract, version 1: the shapes that cross the socket.
 * Shared by the server, the client SDK, the demo, the bench and the tests,
 * so a change here is a change of the protocol (see docs/protocol.md).
 */

export const PROTOCOL_VERSION = "1.1";

export type Role = "user" | "agent" | "admin";

export interface AuthUser {
	id: string;
	name: string;
	role: Role;
	teams: string[];
}

export type MessageType = "text";

export interface Message {
	id: string;
	conversationId: string;
	seq: number;
	senderId: string;
	clientMsgId: string;
	type: MessageType;
	text: string;
	attachments: unknown[];
	createdAt: string;
	/** When the sender last edited the text (since 1.1; absent if never). */
	editedAt?: string;
	/** When the sender deleted it; text is then "" (since 1.1; absent if not deleted). */
	deletedAt?: string;
	/**
	 * Where the message's latest edit or delete stands in its conversation's change sequence
	 * (1, 2, 3... per conversation, dense): the cursor for catching up on changes (since 1.1).
	 */
	changeSeq?: number;
}

export interface Member {
	userId: string;
	role: "buyer" | "seller";
	delivered: number;
	read: number;
}

export interface Conversation {
	id: string;
	listingId: string;
	listingTitle: string | null;
	buyerId: string;
	sellerId: string;
	createdAt: string;
	lastSeq: number;
	lastActivityAt: string;
	members: Member[];
}

export interface ConversationSummary {
	id: string;
	listingId: string;
	listingTitle: string | null;
	buyerId: string;
	sellerId: string;
	lastSeq: number;
	lastActivityAt: string;
	lastMessage: Message | null;
	unread: number;
}

export interface Watermarks {
	delivered: number;
	read: number;
}

export interface ReceiptUpdate extends Watermarks {
	conversationId: string;
	userId: string;
}

export interface TypingEvent {
	conversationId: string;
	userId: string;
	typing: boolean;
	/** With typing: true, stop showing it after this long unless told again (since 1.1). */
	expiresInMs?: number;
}

export interface PresenceState {
	userId: string;
	online: boolean;
	lastSeenAt: string | null;
}

export interface SearchHit {
	message: Message;
	/** HTML-safe snippet of the text: everything escaped, matches wrapped in <mark>. */
	highlight: string;
}

/** Socket-callable actions: name -> [params, result]. */
export interface Actions {
	"conversations.open": [{ listingId: string; sellerId: string; listingTitle?: string }, Conversation];
	"conversations.get": [{ conversationId: string }, Conversation];
	"conversations.list": [{ limit?: number; before?: string }, { items: ConversationSummary[]; next?: string }];
	"messages.send": [
		{ conversationId: string; clientMsgId: string; type: MessageType; text: string; attachments?: [] },
		Message
	];
	"messages.history": [
		{ conversationId: string; beforeSeq?: number; afterSeq?: number; limit?: number },
		Message[]
	];
	"messages.sync": [
		{ cursors: Record<string, number>; limit?: number; changeCursors?: Record<string, number> },
		{
			messages: Message[];
			receipts: ReceiptUpdate[];
			conversations: ConversationSummary[];
			more: boolean;
			/** Edited or deleted messages the device holds, as they stand now (when it sent change cursors). */
			changes?: Message[];
			/** Per conversation whose changes the page covered: the device's next change cursor. */
			changesUpTo?: Record<string, number>;
		}
	];
	"messages.edit": [{ conversationId: string; seq: number; text: string }, Message];
	"messages.delete": [{ conversationId: string; seq: number }, Message];
	"receipts.mark": [{ conversationId: string; seq: number; state: "delivered" | "read" }, Watermarks];
	"typing.set": [{ conversationId: string; typing: boolean }, { ok: true }];
	"search.messages": [{ q: string; conversationId?: string; limit?: number }, { hits: SearchHit[] }];
	"presence.get": [{ userIds: string[] }, PresenceState[]];
	"push.register": [{ token: string; platform?: "android" | "ios" | "web" }, { ok: true }];
	"push.unregister": [Record<string, never>, { ok: true }];
}

export type ActionName = keyof Actions;
export type ParamsOf<A extends ActionName> = Actions[A][0];
export type ResultOf<A extends ActionName> = Actions[A][1];

/** The whitelist: exactly these actions can be called from a socket. */
export const SOCKET_ACTIONS: readonly ActionName[] = [
	"conversations.open",
	"conversations.get",
	"conversations.list",
	"messages.send",
	"messages.history",
	"messages.sync",
	"messages.edit",
	"messages.delete",
	"receipts.mark",
	"typing.set",
	"search.messages",
	"presence.get",
	"push.register",
	"push.unregister",
];

/** Server -> client events. */
export interface ServerEvents {
	"message.new": Message;
	"message.updated": Message;
	"receipt.updated": ReceiptUpdate;
	typing: TypingEvent;
	presence: PresenceState;
	"conversation.updated": ConversationSummary;
	/** The server is going away (drain): reconnect, possibly elsewhere. */
	"server.draining": { reconnectInMs: number };
}

export type ServerEventName = keyof ServerEvents;

export type ErrorType =
	| "UNAUTHORIZED"
	| "FORBIDDEN"
	| "NOT_FOUND"
	| "VALIDATION_ERROR"
	| "CONFLICT"
	| "RATE_LIMITED"
	| "TOO_MANY_SESSIONS"
	| "PAYLOAD_TOO_LARGE"
	| "UNSUPPORTED_MEDIA_TYPE"
	| "UNAVAILABLE"
	| "INTERNAL";

export interface WireError {
	name: string;
	message: string;
	code: number;
	type: ErrorType | string;
	data?: unknown;
}

/** Limits a client can rely on (also served at GET /api/info). */
export interface Limits {
	maxTextLength: number;
	historyMaxLimit: number;
	syncMaxLimit: number;
	searchMaxLimit: number;
}
