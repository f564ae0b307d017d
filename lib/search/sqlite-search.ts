/**
 * SearchIndex on SQLite (embedded profile). A search costs what the caller's own conversations
 * hold, never what the whole deployment holds: better-sqlite3 is synchronous, so a search that
 * walked every user's messages would stop the whole server while it ran.
 *
 * - A small scope (at most `scanUpTo` messages, known from the conversations' last_seq without a
 *   scan) is read by conversation_id, newest first, and matched in TypeScript (folding.ts).
 * - A larger scope goes through FTS5. Each message is indexed with tokens naming its conversation
 *   and its two members, so the MATCH itself intersects the query with the scope: one member token
 *   when someone is in every conversation of the scope (searching all of one's own conversations),
 *   otherwise the conversations' tokens. Prefix indexes (1-3 characters) keep a short prefix from
 *   expanding to every word of the deployment that starts with it. FTS5 only proposes candidates:
 *   each is checked against the scope and matched in TypeScript like a scanned message.
 *
 * Both paths give the same answer: every query word must be a word of the message, the last one may
 * also start a word; messages matching the last word whole rank first, then those where it is only a
 * prefix, each newest first. The index is kept by triggers in the same transaction as the message
 * insert, so an acked message is always searchable and a crash can never leave the two apart.
 */
import type Database from "better-sqlite3";
import type { SearchHit } from "../../contract";
import { acquireDatabase, releaseDatabase } from "../sqlite/database";
import { migrate, rowToMessage } from "../store/sqlite-store";
import { foldedQueryTerms, matchText, type Match } from "./folding";
import { queryTerms } from "./highlight";
import type { SearchQuery, SelfMaintainedSearchIndex } from "./search-index";
import { highlight } from "./snippet";

/**
 * Contentless (the text stays in messages only), so deletes need contentless_delete. The scope
 * column holds 'c' + hex(conversation id) and 'u' + hex(user id) for the buyer and the seller, who
 * never change. Changing any of this needs a migration in sqlite-store.ts that drops the current one.
 */
const INDEX_SCHEMA = `
CREATE VIEW messages_search_source AS
	SELECT m.rowid AS rowid, m.text AS text,
		'c' || hex(m.conversation_id) || coalesce(' u' || hex(c.buyer_id) || ' u' || hex(c.seller_id), '') AS scope
	FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id;
CREATE VIRTUAL TABLE messages_search USING fts5(
	text, scope, content='', contentless_delete=1, prefix='1 2 3', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
	INSERT INTO messages_search (rowid, text, scope) SELECT rowid, text, scope FROM messages_search_source WHERE rowid = new.rowid;
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
	DELETE FROM messages_search WHERE rowid = old.rowid;
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF text, conversation_id ON messages BEGIN
	DELETE FROM messages_search WHERE rowid = old.rowid;
	INSERT INTO messages_search (rowid, text, scope) SELECT rowid, text, scope FROM messages_search_source WHERE rowid = new.rowid;
END;
`;

const FILL_INDEX = `INSERT INTO messages_search (rowid, text, scope) SELECT rowid, text, scope FROM messages_search_source`;

/** The index's token for a conversation or a user, quoted for a MATCH: as in messages_search_source. */
function scopeToken(kind: "c" | "u", id: string): string {
	return `"${kind}${Buffer.from(id, "utf8").toString("hex")}"`;
}

/** The longest prefix with its own index: a longer last word is looked up by its first characters. */
const INDEXED_PREFIX = 3;
/** Up to this many conversations, their own tokens name the scope exactly. */
const CONVERSATION_TOKENS_UP_TO = 10;
/**
 * FTS5 advances every branch of an OR at each step, so an OR of thousands of conversations costs
 * thousands of comparisons per candidate: conversation tokens are looked up a group at a time.
 */
const CONVERSATION_TOKENS_PER_QUERY = 100;
/** A member token may propose messages outside the scope, but at most this many times the scope's. */
const MEMBER_OVERREACH = 2;

export interface SqliteSearchOptions {
	/** Scopes of at most this many messages are scanned; larger ones go through FTS5. */
	scanUpTo?: number;
	/** Called after every search with what it cost (tests, diagnostics). */
	onSearch?: (stats: SearchStats) => void;
}

export interface SearchStats {
	path: "scan" | "index";
	/** Messages in the scope's conversations (sum of their last_seq). */
	scopeMessages: number;
	/** Index path: tokens naming the scope in the MATCH (1 when a member token stands for it). */
	scopeTokens: number;
	/** Message rows read and matched in TypeScript: scanned messages, or FTS5 candidates. */
	rowsRead: number;
}

/** The conversations a search may find messages in: those of the query that exist and hold messages. */
interface Scope {
	ids: Set<string>;
	/** JSON array of ids, for json_each. */
	json: string;
	messages: number;
}

type Candidate = [rowid: number, text: string, conversationId: string];
type MessageRow = Parameters<typeof rowToMessage>[0];

export class SqliteSearch implements SelfMaintainedSearchIndex {
	readonly engine = "sqlite-fts5";
	private db!: Database.Database;
	private sql!: ReturnType<SqliteSearch["prepare"]>;
	private readonly scanUpTo: number;

	constructor(
		private readonly dataDir: string,
		private readonly options: SqliteSearchOptions = {},
	) {
		// A scan reads about 4 µs a message (each row is a random read), so ~8 ms at this size, where
		// FTS5 takes a few ms and only grows with the matches (bench/search-corpus.ts --busy-users).
		this.scanUpTo = options.scanUpTo ?? 2000;
	}

	async open(): Promise<void> {
		const db = acquireDatabase(this.dataDir);
		try {
			migrate(db);
			if (!db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'messages_search'`).get()) {
				// First open of this database with SQLite search, or a migration dropped an older index.
				db.transaction(() => {
					db.exec(INDEX_SCHEMA);
					db.exec(FILL_INDEX);
				}).immediate();
			}
		} catch (err) {
			releaseDatabase(db);
			throw err;
		}
		this.db = db;
		this.sql = this.prepare();
	}

	private prepare() {
		const db = this.db;
		return {
			conversations: db.prepare<[string], { id: string; last_seq: number }>(
				`SELECT id, last_seq FROM conversations WHERE id IN (SELECT value FROM json_each(?)) AND last_seq > 0`,
			),
			// Of the users in every conversation of the scope, the one with the fewest messages overall.
			commonMember: db.prepare<[string, number], { userId: string; messages: number }>(
				`SELECT user_id AS userId,
					(SELECT coalesce(sum(c.last_seq), 0) FROM members o JOIN conversations c ON c.id = o.conversation_id WHERE o.user_id = m.user_id) AS messages
				 FROM members m WHERE conversation_id IN (SELECT value FROM json_each(?))
				 GROUP BY user_id HAVING count(*) = ? ORDER BY messages LIMIT 1`,
			),
			newestInScope: db
				.prepare<[string], Candidate>(
					`SELECT rowid, text, conversation_id FROM messages WHERE conversation_id IN (SELECT value FROM json_each(?)) ORDER BY rowid DESC`,
				)
				.raw(),
			newestCandidates: db
				.prepare<[string], Candidate>(
					`SELECT m.rowid, m.text, m.conversation_id FROM messages_search s JOIN messages m ON m.rowid = s.rowid
					 WHERE messages_search MATCH ? ORDER BY s.rowid DESC`,
				)
				.raw(),
			message: db.prepare<[number], MessageRow>(`SELECT * FROM messages WHERE rowid = ?`),
		};
	}

	async close(): Promise<void> {
		if (this.db) releaseDatabase(this.db);
	}

	async rebuild(): Promise<void> {
		this.db.transaction(() => {
			this.db.exec(`INSERT INTO messages_search (messages_search) VALUES ('delete-all')`);
			this.db.exec(FILL_INDEX);
		}).immediate();
	}

	async search(q: SearchQuery): Promise<SearchHit[]> {
		const terms = foldedQueryTerms(q.text);
		if (terms.length === 0 || q.conversationIds.length === 0 || q.limit <= 0) return [];
		const scope = this.scopeOf(q.conversationIds);
		const ranking = new Ranking(terms, q.limit, scope.ids);
		const path = scope.messages <= this.scanUpTo ? "scan" : "index";
		const scopeTokens = path === "scan" ? this.scan(scope, ranking) : this.lookUp(scope, queryTerms(q.text), ranking);
		this.options.onSearch?.({ path, scopeMessages: scope.messages, scopeTokens, rowsRead: ranking.rowsRead });
		return ranking.best().map((rowid) => {
			const message = rowToMessage(this.sql.message.get(rowid)!);
			return { message, highlight: highlight(message.text, terms) };
		});
	}

	private scopeOf(conversationIds: string[]): Scope {
		const rows = this.sql.conversations.all(JSON.stringify(conversationIds));
		const ids = rows.map((r) => r.id);
		return { ids: new Set(ids), json: JSON.stringify(ids), messages: rows.reduce((n, r) => n + r.last_seq, 0) };
	}

	/** Reads the scope newest first, until nothing older can enter the answer. Names no token. */
	private scan(scope: Scope, ranking: Ranking): 0 {
		for (const candidate of this.sql.newestInScope.iterate(scope.json)) {
			if (ranking.offer(candidate, "any") === "done") break;
		}
		return 0;
	}

	/**
	 * Two passes over FTS5 candidates, each newest first: messages with the last word whole, then,
	 * if those are too few, messages where it starts a word. FTS5 gets the words as the user typed
	 * them (unicode61 folds both sides the same way), the last one cut to its indexed prefix.
	 * Returns how many tokens named the scope.
	 */
	private lookUp(scope: Scope, words: string[], ranking: Ranking): number {
		const { expressions, tokens } = this.scopeExpressions(scope);
		const whole = words.map(quote).join(" AND ");
		const typing = [...words.slice(0, -1).map(quote), `${quote([...words.at(-1)!].slice(0, INDEXED_PREFIX).join(""))}*`].join(" AND ");
		for (const [text, wanted] of [[whole, "whole"], [typing, "prefix"]] as const) {
			for (const expression of expressions) {
				// Each query's candidates are newest first, so it is done once it filled the answer.
				for (const candidate of this.sql.newestCandidates.iterate(`scope : (${expression}) AND text : (${text})`)) {
					if (ranking.offer(candidate, wanted) === "done") break;
				}
				ranking.nextGroup();
			}
			if (ranking.complete()) break;
		}
		return tokens;
	}

	/** The scope as FTS5 expressions, one query each: a member's token, or groups of conversation tokens. */
	private scopeExpressions(scope: Scope): { expressions: string[]; tokens: number } {
		const ids = [...scope.ids];
		if (ids.length > CONVERSATION_TOKENS_UP_TO) {
			const member = this.sql.commonMember.get(scope.json, ids.length);
			if (member && member.messages <= MEMBER_OVERREACH * scope.messages) return { expressions: [scopeToken("u", member.userId)], tokens: 1 };
		}
		const expressions: string[] = [];
		for (let i = 0; i < ids.length; i += CONVERSATION_TOKENS_PER_QUERY) {
			expressions.push(ids.slice(i, i + CONVERSATION_TOKENS_PER_QUERY).map((id) => scopeToken("c", id)).join(" OR "));
		}
		return { expressions, tokens: ids.length };
	}
}

/** An FTS5 string: every query word is quoted, so nothing the user types is ever syntax. */
function quote(word: string): string {
	return `"${word.replaceAll('"', '""')}"`;
}

/**
 * The best `limit` messages seen so far: whole matches before prefix matches, newest first in each.
 * Messages are offered newest first within a group (a scan is one group; each FTS5 query is one).
 */
class Ranking {
	rowsRead = 0;
	private readonly whole: number[] = [];
	private readonly prefix: number[] = [];
	private inGroup = { whole: 0, prefix: 0 };

	constructor(
		private readonly terms: string[],
		private readonly limit: number,
		/** The permission check itself: a message of any other conversation is never a hit. */
		private readonly conversationIds: Set<string>,
	) {}

	/** Matches one message; "done" once nothing older in the group can enter the answer. */
	offer([rowid, text, conversationId]: Candidate, wanted: Match | "any"): "more" | "done" {
		this.rowsRead++;
		if (!this.conversationIds.has(conversationId)) return "more";
		const match = matchText(text, this.terms);
		if (match === "none" || (wanted !== "any" && match !== wanted)) return "more";
		// Within a group, only its newest `limit` of each kind can enter the answer.
		if (this.inGroup[match] < this.limit) {
			this[match].push(rowid);
			this.inGroup[match]++;
		}
		if (this.inGroup.whole >= this.limit) return "done";
		// Prefix matches only fill what whole ones leave, so the group's newest `limit` are enough.
		return wanted === "prefix" && this.inGroup.prefix >= this.limit - this.whole.length ? "done" : "more";
	}

	nextGroup(): void {
		this.inGroup = { whole: 0, prefix: 0 };
	}

	/** Enough whole matches: no prefix match can enter the answer. */
	complete(): boolean {
		return this.whole.length >= this.limit;
	}

	best(): number[] {
		const newestFirst = (a: number, b: number) => b - a;
		return [...this.whole.sort(newestFirst), ...this.prefix.sort(newestFirst)].slice(0, this.limit);
	}
}
