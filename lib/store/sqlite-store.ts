/**
 * ChatStore on SQLite (embedded profile). Sends are group-committed: every
 * append submitted while the previous transaction runs goes into the next one,
 * so an ack is durable (synchronous=FULL) without one fsync per message.
 */
import { randomBytes } from "node:crypto";
import type Database from "better-sqlite3";
import type { Message } from "../../contract";
import { Batcher } from "../batcher";
import { conflict, forbidden, notFound } from "../errors";
import { acquireDatabase, releaseDatabase } from "../sqlite/database";
import { decodeInboxCursor, encodeInboxCursor } from "./inbox-cursor";
import type {
	AppendRequest,
	AppendResult,
	ChangeRequest,
	ChangeResult,
	ChangesPage,
	ChatStore,
	ConversationRecord,
	HistoryQuery,
	InboxEntry,
	InboxPage,
	MemberRecord,
	Membership,
	OpenConversation,
	SearchFeed,
	WatermarkResult,
	WatermarkUpdate,
} from "./chat-store";

export const STORE_SCHEMA = `
CREATE TABLE IF NOT EXISTS search_outbox (key INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS conversations (
	id TEXT PRIMARY KEY,
	listing_id TEXT NOT NULL,
	listing_title TEXT,
	buyer_id TEXT NOT NULL,
	seller_id TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_seq INTEGER NOT NULL DEFAULT 0,
	last_activity_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS members (
	conversation_id TEXT NOT NULL REFERENCES conversations(id),
	user_id TEXT NOT NULL,
	role TEXT NOT NULL,
	delivered_seq INTEGER NOT NULL DEFAULT 0,
	read_seq INTEGER NOT NULL DEFAULT 0,
	sent_count INTEGER NOT NULL DEFAULT 0,
	sent_upto_read INTEGER NOT NULL DEFAULT 0,
	last_activity_at INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id, last_activity_at DESC, conversation_id DESC);

CREATE TABLE IF NOT EXISTS messages (
	rowid INTEGER PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	conversation_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	sender_id TEXT NOT NULL,
	client_msg_id TEXT NOT NULL,
	type TEXT NOT NULL,
	text TEXT NOT NULL,
	attachments TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (conversation_id, seq),
	UNIQUE (sender_id, client_msg_id)
);
`;

/** Which of a member's conversations they see (members m, conversations c): see ChatStore.memberships. */
const VISIBLE = "(m.role = 'buyer' OR c.last_seq > 0)";

/**
 * The schema's version is PRAGMA user_version: migration i takes a database from version i to i + 1,
 * in one transaction, on whichever engine opens the database first (the store or the search index).
 * Append only; never edit a migration that has shipped.
 */
const MIGRATIONS: ((db: Database.Database) => void)[] = [
	// 0 -> 1: the tables. Databases made before versioning already have them, hence IF NOT EXISTS.
	(db) => db.exec(STORE_SCHEMA),
	// 1 -> 2: the search index becomes messages_search, which also indexes each message's conversation
	// and members (sqlite-search.ts). The old index goes; SqliteSearch builds the new one when it opens.
	(db) =>
		db.exec(`
			DROP TRIGGER IF EXISTS messages_fts_insert;
			DROP TRIGGER IF EXISTS messages_fts_delete;
			DROP TRIGGER IF EXISTS messages_fts_update;
			DROP TABLE IF EXISTS messages_fts;
		`),
	// 2 -> 3: edits and deletes (a dense change sequence per conversation; each message keeps the
	// number of its latest change), and the push devices' tokens.
	(db) =>
		db.exec(`
			ALTER TABLE conversations ADD COLUMN last_change_seq INTEGER NOT NULL DEFAULT 0;
			ALTER TABLE messages ADD COLUMN edited_at INTEGER;
			ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
			ALTER TABLE messages ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
			CREATE INDEX messages_by_change ON messages (conversation_id, change_seq) WHERE change_seq > 0;
			CREATE TABLE IF NOT EXISTS push_devices (
				user_id TEXT NOT NULL,
				device_id TEXT NOT NULL,
				token TEXT NOT NULL UNIQUE,
				platform TEXT NOT NULL,
				updated_at INTEGER NOT NULL,
				PRIMARY KEY (user_id, device_id)
			) WITHOUT ROWID;
		`),
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION; refuses one written by newer code rather than guess. */
export function migrate(db: Database.Database): void {
	const version = (): number => db.pragma("user_version", { simple: true }) as number;
	if (version() > SCHEMA_VERSION) {
		throw new Error(`parley.db has schema version ${version()}, newer than this code's ${SCHEMA_VERSION}: upgrade Parley`);
	}
	while (version() < SCHEMA_VERSION) {
		db.transaction(() => {
			const from = version();
			if (from >= SCHEMA_VERSION) return;
			MIGRATIONS[from]!(db);
			db.pragma(`user_version = ${from + 1}`);
		}).immediate();
	}
}

interface MessageRow {
	id: string;
	conversation_id: string;
	seq: number;
	sender_id: string;
	client_msg_id: string;
	type: Message["type"];
	text: string;
	attachments: string;
	created_at: number;
	edited_at: number | null;
	deleted_at: number | null;
	change_seq: number;
}

interface ConversationRow {
	id: string;
	listing_id: string;
	listing_title: string | null;
	buyer_id: string;
	seller_id: string;
	created_at: number;
	last_seq: number;
	last_activity_at: number;
	last_change_seq: number;
}

interface MemberRow {
	conversation_id: string;
	user_id: string;
	role: "buyer" | "seller";
	delivered_seq: number;
	read_seq: number;
	sent_count: number;
	sent_upto_read: number;
	last_activity_at: number;
}

export function rowToMessage(row: MessageRow): Message {
	const message: Message = {
		id: row.id,
		conversationId: row.conversation_id,
		seq: row.seq,
		senderId: row.sender_id,
		clientMsgId: row.client_msg_id,
		type: row.type,
		text: row.text,
		attachments: JSON.parse(row.attachments) as unknown[],
		createdAt: new Date(row.created_at).toISOString(),
	};
	if (row.edited_at) message.editedAt = new Date(row.edited_at).toISOString();
	if (row.deleted_at) message.deletedAt = new Date(row.deleted_at).toISOString();
	if (row.change_seq > 0) message.changeSeq = row.change_seq;
	return message;
}

const toConversation = (r: ConversationRow): ConversationRecord => ({
	id: r.id,
	listingId: r.listing_id,
	listingTitle: r.listing_title,
	buyerId: r.buyer_id,
	sellerId: r.seller_id,
	createdAt: r.created_at,
	lastSeq: r.last_seq,
	lastActivityAt: r.last_activity_at,
	lastChangeSeq: r.last_change_seq,
});

const byRole = (a: MemberRow, b: MemberRow) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0);

const toMember = (r: MemberRow): MemberRecord => ({
	conversationId: r.conversation_id,
	userId: r.user_id,
	role: r.role,
	delivered: r.delivered_seq,
	read: r.read_seq,
	sentCount: r.sent_count,
	sentUpToRead: r.sent_upto_read,
});

export class SqliteStore implements ChatStore {
	readonly engine = "sqlite";
	private db!: Database.Database;
	private sql!: ReturnType<SqliteStore["prepare"]>;
	private appends!: Batcher<AppendRequest, AppendResult>;

	readonly searchFeed?: SearchFeed;

	/** `feedSearch`: record every append in the search outbox (for an index that must be fed). */
	constructor(
		private readonly dataDir: string,
		private readonly feedSearch = false,
	) {
		if (feedSearch) this.searchFeed = this.outbox();
	}

	async open(): Promise<void> {
		const db = acquireDatabase(this.dataDir);
		try {
			migrate(db);
		} catch (err) {
			releaseDatabase(db);
			throw err;
		}
		this.db = db;
		this.sql = this.prepare();
		const commit = this.db.transaction((batch: AppendRequest[]) => batch.map((req) => this.appendOne(req)));
		this.appends = new Batcher((batch) => commit(batch), { delayMs: 0, maxItems: 512 });
	}

	async close(): Promise<void> {
		if (!this.db) return;
		await this.appends.drain();
		releaseDatabase(this.db);
	}

	private prepare() {
		const db = this.db;
		return {
			insertConversation: db.prepare(
				`INSERT INTO conversations (id, listing_id, listing_title, buyer_id, seller_id, created_at, last_seq, last_activity_at)
				 VALUES (@id, @listingId, @listingTitle, @buyerId, @sellerId, @now, 0, @now) ON CONFLICT (id) DO NOTHING`,
			),
			insertMember: db.prepare(
				`INSERT INTO members (conversation_id, user_id, role, last_activity_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			),
			conversation: db.prepare<[string], ConversationRow>(`SELECT * FROM conversations WHERE id = ?`),
			members: db.prepare<[string], MemberRow>(`SELECT * FROM members WHERE conversation_id = ? ORDER BY role`),
			member: db.prepare<[string, string], MemberRow>(`SELECT * FROM members WHERE conversation_id = ? AND user_id = ?`),
			// The seller sees a conversation once it has a message: opening one cannot fill their inbox.
			inboxFirst: db.prepare<[string, number], MemberRow>(
				`SELECT m.* FROM members m JOIN conversations c ON c.id = m.conversation_id
				 WHERE m.user_id = ? AND ${VISIBLE} ORDER BY m.last_activity_at DESC, m.conversation_id DESC LIMIT ?`,
			),
			inboxAfter: db.prepare<[string, number, number, string, number], MemberRow>(
				`SELECT m.* FROM members m JOIN conversations c ON c.id = m.conversation_id
				 WHERE m.user_id = ? AND ${VISIBLE} AND (m.last_activity_at < ? OR (m.last_activity_at = ? AND m.conversation_id < ?))
				 ORDER BY m.last_activity_at DESC, m.conversation_id DESC LIMIT ?`,
			),
			memberships: db.prepare<[string], Membership>(
				`SELECT c.id AS conversationId, c.last_seq AS lastSeq, c.last_change_seq AS lastChangeSeq, m.last_activity_at AS lastActivityAt
				 FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.user_id = ? AND ${VISIBLE}`,
			),
			contacts: db.prepare<[string, string, number], { user_id: string }>(
				`SELECT DISTINCT o.user_id FROM members m JOIN members o ON o.conversation_id = m.conversation_id
				 WHERE m.user_id = ? AND o.user_id <> ? AND m.sent_count > 0 AND o.sent_count > 0 LIMIT ?`,
			),
			messageByClientId: db.prepare<[string, string], MessageRow>(`SELECT * FROM messages WHERE sender_id = ? AND client_msg_id = ?`),
			messageBySeq: db.prepare<[string, number], MessageRow>(`SELECT * FROM messages WHERE conversation_id = ? AND seq = ?`),
			nextSeq: db.prepare<[number, string], ConversationRow>(
				`UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = ? WHERE id = ? RETURNING *`,
			),
			insertMessage: db.prepare(
				`INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, type, text, attachments, created_at)
				 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			),
			// One statement moves every member's inbox position, counts the sender's message and returns the members.
			touchMembers: db.prepare<[number, string, string], MemberRow>(
				`UPDATE members SET last_activity_at = ?, sent_count = sent_count + (user_id = ?) WHERE conversation_id = ? RETURNING *`,
			),
			toOutbox: db.prepare(`INSERT INTO search_outbox (message_id) VALUES (?)`),
			nextChangeSeq: db.prepare<[string], { last_change_seq: number }>(
				`UPDATE conversations SET last_change_seq = last_change_seq + 1 WHERE id = ? RETURNING last_change_seq`,
			),
			editMessage: db.prepare(`UPDATE messages SET text = ?, edited_at = ?, change_seq = ? WHERE conversation_id = ? AND seq = ?`),
			deleteMessage: db.prepare(`UPDATE messages SET text = '', attachments = '[]', deleted_at = ?, change_seq = ? WHERE conversation_id = ? AND seq = ?`),
			// "change_seq > 0" spelled out so the partial index applies.
			changesAfter: db.prepare<[string, number, number, number], MessageRow>(
				`SELECT * FROM messages WHERE conversation_id = ? AND change_seq > 0 AND change_seq > ? AND seq <= ? ORDER BY change_seq LIMIT ?`,
			),
			newest: db.prepare<[string, number], MessageRow>(`SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?`),
			before: db.prepare<[string, number, number], MessageRow>(
				`SELECT * FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
			),
			after: db.prepare<[string, number, number], MessageRow>(
				`SELECT * FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?`,
			),
			between: db.prepare<[string, number, number, number], MessageRow>(
				`SELECT * FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`,
			),
			// Forward-only: MAX() makes late or duplicate receipts harmless. sent_upto_read counts the
			// member's own messages at or below the new read mark, scanning only the unread window.
			saveWatermark: db.prepare(
				`UPDATE members SET
					delivered_seq = MAX(delivered_seq, @delivered, @read),
					read_seq = MAX(read_seq, @read),
					sent_upto_read = sent_count - (SELECT COUNT(*) FROM messages
						WHERE conversation_id = @conversationId AND sender_id = @userId AND seq > MAX(read_seq, @read))
				 WHERE conversation_id = @conversationId AND user_id = @userId`,
			),
		};
	}

	async deploymentSecret(): Promise<string> {
		this.db.prepare(`INSERT INTO meta (key, value) VALUES ('deployment_secret', ?) ON CONFLICT DO NOTHING`).run(randomBytes(32).toString("base64url"));
		return (this.db.prepare(`SELECT value FROM meta WHERE key = 'deployment_secret'`).get() as { value: string }).value;
	}

	async openConversation(req: OpenConversation): Promise<{ conversation: ConversationRecord; created: boolean }> {
		const created = this.db.transaction(() => {
			if (this.sql.insertConversation.run(req).changes === 0) return false;
			this.sql.insertMember.run(req.id, req.buyerId, "buyer", req.now);
			this.sql.insertMember.run(req.id, req.sellerId, "seller", req.now);
			return true;
		})();
		return { conversation: toConversation(this.sql.conversation.get(req.id)!), created };
	}

	async getConversation(id: string): Promise<ConversationRecord | null> {
		const row = this.sql.conversation.get(id);
		return row ? toConversation(row) : null;
	}

	async members(conversationId: string): Promise<MemberRecord[]> {
		return this.sql.members.all(conversationId).map(toMember);
	}

	async inbox(userId: string, limit: number, before?: string): Promise<InboxPage> {
		const cursor = before ? decodeInboxCursor(before) : null;
		const rows = cursor
			? this.sql.inboxAfter.all(userId, cursor.at, cursor.at, cursor.id, limit + 1)
			: this.sql.inboxFirst.all(userId, limit + 1);
		const page = rows.slice(0, limit);
		const entries = page.map((m) => this.entryFor(m));
		const last = page[page.length - 1];
		return rows.length > limit && last
			? { entries, next: encodeInboxCursor(last.last_activity_at, last.conversation_id) }
			: { entries };
	}

	async inboxEntry(userId: string, conversationId: string): Promise<InboxEntry | null> {
		const member = this.sql.member.get(conversationId, userId);
		return member ? this.entryFor(member) : null;
	}

	private entryFor(member: MemberRow): InboxEntry {
		const conversation = toConversation(this.sql.conversation.get(member.conversation_id)!);
		const last = conversation.lastSeq > 0 ? this.sql.messageBySeq.get(conversation.id, conversation.lastSeq) : undefined;
		return { conversation, member: toMember(member), lastMessage: last ? rowToMessage(last) : null };
	}

	async memberships(userId: string): Promise<Membership[]> {
		return this.sql.memberships.all(userId);
	}

	async contactsOf(userId: string, limit: number): Promise<string[]> {
		return this.sql.contacts.all(userId, userId, limit).map((r) => r.user_id);
	}

	appendMessage(req: AppendRequest): Promise<AppendResult> {
		return this.appends.submit(req);
	}

	/** Runs inside the group-commit transaction; returns an Error instead of throwing so one bad item cannot fail its batch. */
	private appendOne(req: AppendRequest): AppendResult | Error {
		const existing = this.sql.messageByClientId.get(req.senderId, req.clientMsgId);
		if (existing) {
			if (existing.conversation_id !== req.conversationId) {
				return conflict("clientMsgId was already used for another conversation", { clientMsgId: req.clientMsgId });
			}
			return {
				message: rowToMessage(existing),
				duplicate: true,
				conversation: toConversation(this.sql.conversation.get(req.conversationId)!),
				members: this.sql.members.all(req.conversationId).map(toMember),
			};
		}
		const bumped = this.sql.nextSeq.get(req.now, req.conversationId);
		if (!bumped) return notFound("Conversation not found", { conversationId: req.conversationId });
		const attachments = JSON.stringify(req.attachments);
		this.sql.insertMessage.run(
			req.id, req.conversationId, bumped.last_seq, req.senderId, req.clientMsgId, req.type, req.text, attachments, req.now,
		);
		if (this.feedSearch) this.sql.toOutbox.run(req.id);
		const members = this.sql.touchMembers.all(req.now, req.senderId, req.conversationId).sort(byRole).map(toMember);
		return {
			message: rowToMessage({
				id: req.id,
				conversation_id: req.conversationId,
				seq: bumped.last_seq,
				sender_id: req.senderId,
				client_msg_id: req.clientMsgId,
				type: req.type,
				text: req.text,
				attachments,
				created_at: req.now,
				edited_at: null,
				deleted_at: null,
				change_seq: 0,
			}),
			duplicate: false,
			conversation: toConversation(bumped),
			members,
		};
	}

	async changeMessage(req: ChangeRequest): Promise<ChangeResult> {
		return this.db.transaction(() => {
			const row = this.sql.messageBySeq.get(req.conversationId, req.seq);
			if (!row) throw notFound("Message not found", { conversationId: req.conversationId, seq: req.seq });
			if (row.sender_id !== req.editorId) throw forbidden("Only the sender can edit or delete a message");
			const deleted = row.deleted_at !== null;
			const unchanged = req.text === null ? deleted : req.text === row.text && !deleted;
			if (!unchanged && deleted) throw conflict("The message was deleted", { seq: req.seq });
			if (!unchanged) {
				const { last_change_seq: changeSeq } = this.sql.nextChangeSeq.get(req.conversationId)!;
				if (req.text === null) this.sql.deleteMessage.run(req.now, changeSeq, req.conversationId, req.seq);
				else this.sql.editMessage.run(req.text, req.now, changeSeq, req.conversationId, req.seq);
				if (this.feedSearch) this.sql.toOutbox.run(row.id);
			}
			return {
				message: rowToMessage(this.sql.messageBySeq.get(req.conversationId, req.seq)!),
				changed: !unchanged,
				conversation: toConversation(this.sql.conversation.get(req.conversationId)!),
				members: this.sql.members.all(req.conversationId).map(toMember),
			};
		})();
	}

	async changesAfter(conversationId: string, afterChangeSeq: number, uptoSeq: number, limit: number): Promise<ChangesPage> {
		// Two reads with no write between them (one connection, synchronous): a consistent view.
		const rows = this.sql.changesAfter.all(conversationId, afterChangeSeq, uptoSeq, limit);
		const last = this.sql.conversation.get(conversationId)?.last_change_seq ?? afterChangeSeq;
		// A full page stops at its last change; otherwise everything up to the conversation's last is covered.
		const upTo = rows.length === limit && rows.length > 0 ? rows[rows.length - 1]!.change_seq : Math.max(last, afterChangeSeq);
		return { messages: rows.map(rowToMessage), through: rows.map((r) => r.change_seq), upTo };
	}

	private outbox(): SearchFeed {
		return {
			backlog: async (limit) => {
				const rows = this.db
					.prepare(`SELECT o.key AS outbox_key, m.* FROM search_outbox o JOIN messages m ON m.id = o.message_id ORDER BY o.key LIMIT ?`)
					.all(limit) as (MessageRow & { outbox_key: number })[];
				return rows.map((r) => ({ key: String(r.outbox_key), message: rowToMessage(r) }));
			},
			confirm: async (keys) => {
				const remove = this.db.prepare(`DELETE FROM search_outbox WHERE key = ?`);
				this.db.transaction(() => keys.forEach((k) => remove.run(Number(k))))();
			},
			conversationIds: async (limit, after) =>
				(this.db.prepare(`SELECT id FROM conversations WHERE id > ? ORDER BY id LIMIT ?`).all(after ?? "", limit) as { id: string }[]).map((r) => r.id),
		};
	}

	async history(conversationId: string, q: HistoryQuery): Promise<Message[]> {
		let rows: MessageRow[];
		if (q.afterSeq !== undefined && q.beforeSeq !== undefined) rows = this.sql.between.all(conversationId, q.afterSeq, q.beforeSeq, q.limit);
		else if (q.afterSeq !== undefined) rows = this.sql.after.all(conversationId, q.afterSeq, q.limit);
		else if (q.beforeSeq !== undefined) rows = this.sql.before.all(conversationId, q.beforeSeq, q.limit).reverse();
		else rows = this.sql.newest.all(conversationId, q.limit).reverse();
		return rows.map(rowToMessage);
	}

	async messagesAfter(conversationId: string, afterSeq: number, limit: number): Promise<Message[]> {
		return this.sql.after.all(conversationId, afterSeq, limit).map(rowToMessage);
	}

	async saveWatermarks(updates: WatermarkUpdate[]): Promise<(WatermarkResult | null)[]> {
		return this.db.transaction(() =>
			updates.map((u) => {
				const before = this.sql.member.get(u.conversationId, u.userId);
				if (!before) return null;
				const lastSeq = this.sql.conversation.get(u.conversationId)!.last_seq;
				const wanted = { ...u, delivered: Math.min(u.delivered, lastSeq), read: Math.min(u.read, lastSeq) };
				if (wanted.delivered <= before.delivered_seq && wanted.read <= before.read_seq) {
					return { member: toMember(before), lastSeq, changed: false, readChanged: false };
				}
				this.sql.saveWatermark.run(wanted);
				return { member: toMember(this.sql.member.get(u.conversationId, u.userId)!), lastSeq, changed: true, readChanged: wanted.read > before.read_seq };
			}),
		)();
	}
}
