/**
 * SearchIndex on SQLite FTS5 (embedded profile). The index is an external-content
 * FTS5 table kept by triggers in the same transaction as the message insert, so
 * an acked message is always searchable and a crash can never leave the two apart.
 * Tokeniser: unicode61 with diacritics removed, so "cafe" finds "Café".
 */
import type Database from "better-sqlite3";
import type { SearchHit } from "../../contract";
import { acquireDatabase, releaseDatabase } from "../sqlite/database";
import { STORE_SCHEMA, rowToMessage } from "../store/sqlite-store";
import { MARK_CLOSE, MARK_OPEN, markedToHtml, queryTerms } from "./highlight";
import type { SearchQuery, SelfMaintainedSearchIndex } from "./search-index";

const SCHEMA = `
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
	text, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
	INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
	INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text ON messages BEGIN
	INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
	INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
END;
`;

export class SqliteSearch implements SelfMaintainedSearchIndex {
	readonly engine = "sqlite-fts5";
	private db!: Database.Database;
	private query!: Database.Statement;

	constructor(private readonly dataDir: string) {}

	async open(): Promise<void> {
		this.db = acquireDatabase(this.dataDir);
		if (!this.db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'`).get()) {
			// The index is built over the store's messages table: make sure it exists, whichever opens first.
			this.db.exec(STORE_SCHEMA);
			this.db.exec(SCHEMA);
			this.db.exec(`INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')`);
		}
		this.query = this.db.prepare(
			`SELECT m.*, snippet(messages_fts, 0, '${MARK_OPEN}', '${MARK_CLOSE}', '…', 16) AS marked
			 FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid
			 WHERE messages_fts MATCH ? AND m.conversation_id IN (SELECT value FROM json_each(?))
			 ORDER BY rank LIMIT ?`,
		);
	}

	async close(): Promise<void> {
		if (this.db) releaseDatabase(this.db);
	}

	async rebuild(): Promise<void> {
		this.db.exec(`INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')`);
	}

	async search(q: SearchQuery): Promise<SearchHit[]> {
		const terms = queryTerms(q.text);
		if (terms.length === 0 || q.conversationIds.length === 0) return [];
		// Every word must match; the last one may be a prefix ("iba" finds "IBAN") as the user types.
		const match = terms.map((t, i) => `"${t}"${i === terms.length - 1 ? "*" : ""}`).join(" ");
		const rows = this.query.all(match, JSON.stringify(q.conversationIds), q.limit) as (Parameters<typeof rowToMessage>[0] & { marked: string })[];
		return rows.map((row) => ({ message: rowToMessage(row), highlight: markedToHtml(row.marked) }));
	}
}
