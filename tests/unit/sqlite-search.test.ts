import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { Message } from "../../contract";
import { newMessageId } from "../../lib/ids";
import { SqliteSearch, type SearchStats, type SqliteSearchOptions } from "../../lib/search/sqlite-search";
import { SCHEMA_VERSION, STORE_SCHEMA, SqliteStore } from "../../lib/store/sqlite-store";
import { searchBehaviour, type MessageDraft } from "../support/search-behaviour";

/** A store and a search index over a fresh data directory; messages reach the index the production way (triggers). */
async function sqliteSearchUnderTest(options: SqliteSearchOptions = {}, dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-search-"))) {
	const store = new SqliteStore(dataDir);
	await store.open();
	const search = new SqliteSearch(dataDir, options);
	await search.open();

	async function append(draft: MessageDraft): Promise<Message> {
		const { conversationId: id, buyerId, sellerId, senderId, text } = draft;
		await store.openConversation({ id, listingId: `listing-${id}`, listingTitle: null, buyerId, sellerId, now: Date.now() });
		const result = await store.appendMessage({
			id: newMessageId(), conversationId: id, senderId, clientMsgId: newMessageId(), type: "text", text, attachments: [], now: Date.now(),
		});
		return result.message;
	}

	return {
		dataDir,
		store,
		search,
		async add(drafts: MessageDraft[]) {
			const messages: Message[] = [];
			for (const draft of drafts) messages.push(await append(draft));
			return messages;
		},
		/** Many messages at once, as concurrent sends (one group commit), in order. */
		async addMany(drafts: MessageDraft[]) {
			for (const id of new Set(drafts.map((d) => d.conversationId))) {
				const d = drafts.find((x) => x.conversationId === id)!;
				await store.openConversation({ id, listingId: `listing-${id}`, listingTitle: null, buyerId: d.buyerId, sellerId: d.sellerId, now: Date.now() });
			}
			await Promise.all(drafts.map((d) => store.appendMessage({
				id: newMessageId(), conversationId: d.conversationId, senderId: d.senderId, clientMsgId: newMessageId(), type: "text", text: d.text, attachments: [], now: Date.now(),
			})));
		},
		async close() {
			await search.close();
			await store.close();
			fs.rmSync(dataDir, { recursive: true, force: true });
		},
	};
}

// The whole suite down each path: every scope here is small, so the default scans; scanUpTo 0 forces FTS5.
searchBehaviour("sqlite: small scopes scanned", () => sqliteSearchUnderTest());
searchBehaviour("sqlite: large scopes through FTS5", () => sqliteSearchUnderTest({ scanUpTo: 0 }));

const drafts = (conversationId: string, texts: string[]): MessageDraft[] =>
	texts.map((text, i) => ({ conversationId, buyerId: `b-${conversationId}`, sellerId: `s-${conversationId}`, senderId: i % 2 ? `s-${conversationId}` : `b-${conversationId}`, text }));

describe("SQLite search: the scan and FTS5 agree", () => {
	let under: Awaited<ReturnType<typeof sqliteSearchUnderTest>>;
	let viaFts: SqliteSearch;
	const texts = [
		"Is the blue bike still available?", "the bike is blue", "bikes and bikers welcome", "Biking tomorrow?", "BIKE",
		"Un café crème", "cafe noir please", "Cafés in Paris", "CAFÉ", "crème brûlée",
		"my IBAN is below", "iban iban iban", "ibanez guitar", "ibis", "I paid by transfer",
		`${"filler ".repeat(20)}the blue bike ${"more ".repeat(20)}end`, "blue blue blue bike bike", "a bike here", "a bikes here", "price 50 euros",
	];
	const conversationIds = Array.from({ length: 130 }, (_, i) => `c_agree_${i}`);

	before(async () => {
		under = await sqliteSearchUnderTest({ scanUpTo: Number.MAX_SAFE_INTEGER });
		viaFts = new SqliteSearch(under.dataDir, { scanUpTo: 0 });
		await viaFts.open();
		// Over more conversations than one FTS5 query names, so the groups' answers are merged too.
		await under.addMany(conversationIds.flatMap((id, c) => drafts(id, texts.filter((_, i) => (i + c) % 3 === 0))));
	});
	after(async () => {
		await viaFts?.close();
		await under?.close();
	});

	it("same hits, same order, same highlight for words, prefixes, accents, several words and any limit", async () => {
		const queries = ["bike", "bik", "b", "bikes", "blue bike", "bike blu", "BLUE", "cafe", "café", "CAF", "creme", "crème brû",
			"iban", "iba", "i", "transfer i", "filler end", "50", "5", "euros pr", "nothing here", "the", "th", "a bike"];
		for (const text of queries) {
			for (const limit of [1, 3, 20, 500]) {
				for (const scope of [conversationIds, conversationIds.slice(0, 3), conversationIds.slice(100)]) {
					const scanned = await under.search.search({ text, conversationIds: scope, limit });
					const looked = await viaFts.search({ text, conversationIds: scope, limit });
					assert.deepEqual(looked, scanned, `${JSON.stringify(text)} limit ${limit} over ${scope.length} conversations`);
				}
			}
		}
	});

	it("equal matches rank newest first, on both paths", async () => {
		await under.add(drafts("c_agree_newest", ["bike one", "bike two", "bike three", "bikes four"]));
		for (const search of [under.search, viaFts]) {
			const hits = await search.search({ text: "bike", conversationIds: ["c_agree_newest"], limit: 20 });
			assert.deepEqual(hits.map((h) => h.message.text), ["bike three", "bike two", "bike one", "bikes four"]);
		}
	});
});

describe("SQLite search: a search costs the caller's messages, not the deployment's", () => {
	let under: Awaited<ReturnType<typeof sqliteSearchUnderTest>>;
	const seen: SearchStats[] = [];
	const mine = "c_cost_mine";
	const busy = "c_cost_busy";

	before(async () => {
		under = await sqliteSearchUnderTest({ scanUpTo: 50, onSearch: (stats) => seen.push(stats) });
		// 6,000 other people's messages, all matching the attacker's favourite queries.
		const foreign = Array.from({ length: 60 }, (_, c) => drafts(`c_cost_foreign_${c}`, Array.from({ length: 100 }, (_, i) => `the tiny bike ${i} t`))).flat();
		await under.addMany(foreign);
		await under.addMany(drafts(mine, ["a tiny conversation about the bike", "thanks", "see you"]));
		await under.addMany(drafts(busy, Array.from({ length: 200 }, (_, i) => (i % 50 === 0 ? `the bike ${i}` : `nothing ${i}`))));
	});
	after(async () => {
		await under?.close();
	});

	const searchOnce = async (text: string, conversationIds: string[]) => {
		seen.length = 0;
		const hits = await under.search.search({ text, conversationIds, limit: 20 });
		return { hits, stats: seen[0]! };
	};

	it("a small scope is scanned: one-letter and common-word queries read only the caller's 3 messages", async () => {
		for (const text of ["t", "the", "bike", "the tiny bike", "zzqx"]) {
			const { stats } = await searchOnce(text, [mine]);
			assert.deepEqual(stats, { path: "scan", scopeMessages: 3, scopeTokens: 0, rowsRead: stats.rowsRead }, text);
			assert.ok(stats.rowsRead <= 3, `${text}: read ${stats.rowsRead} rows`);
		}
		const { hits } = await searchOnce("t", [mine]);
		assert.deepEqual(hits.map((h) => h.message.text), ["thanks", "a tiny conversation about the bike"]);
	});

	it("a large scope goes through FTS5, which only proposes the scope's own matching messages", async () => {
		const { hits, stats } = await searchOnce("the bike", [busy]);
		assert.equal(stats.path, "index");
		assert.equal(stats.scopeMessages, 200);
		assert.equal(hits.length, 4);
		// Whole-word candidates, then prefix candidates ("bik"*): the same 4 messages, proposed once per pass.
		assert.equal(stats.rowsRead, 8, "only this conversation's messages that hold both words");
		const oneLetter = await searchOnce("t", [busy]);
		assert.deepEqual(oneLetter.hits.map((h) => h.message.text), ["the bike 150", "the bike 100", "the bike 50", "the bike 0"]);
		assert.equal(oneLetter.stats.rowsRead, 4, "no message holds the word \"t\"; 4 hold a word starting with it");
	});

	it("one member token stands for all of someone's conversations, and never lets another conversation in", async () => {
		// 12 conversations of one buyer in the scope, and 2 more of theirs outside it, holding the word too.
		const buyer = "u_cost_member";
		const conversation = (c: number, texts: string[]): MessageDraft[] =>
			texts.map((text) => ({ conversationId: `c_cost_member_${c}`, buyerId: buyer, sellerId: `s_cost_member_${c}`, senderId: buyer, text }));
		await under.addMany(Array.from({ length: 14 }, (_, c) => conversation(c, [`secret ${c}`, ...Array.from({ length: 9 }, (_, i) => `filler ${i}`)])).flat());
		const scope = Array.from({ length: 12 }, (_, c) => `c_cost_member_${c}`);
		const { hits, stats } = await searchOnce("secret", scope);
		assert.deepEqual({ path: stats.path, scopeMessages: stats.scopeMessages, scopeTokens: stats.scopeTokens }, { path: "index", scopeMessages: 120, scopeTokens: 1 });
		assert.deepEqual(hits.map((h) => h.message.text).sort(), scope.map((_, c) => `secret ${c}`).sort());
		assert.equal(stats.rowsRead, 2 * 14, "the 2 conversations outside the scope were proposed (once per pass) and refused");
	});

	it("a member with far more messages than the scope is not used: conversation tokens name it", async () => {
		// The busy conversation's seller is also in these 12, but holds 200 more messages elsewhere.
		const seller = `s-${busy}`;
		const conversation = (c: number): MessageDraft[] =>
			Array.from({ length: 5 }, (_, i) => ({ conversationId: `c_cost_shop_${c}`, buyerId: `b_cost_shop_${c}`, sellerId: seller, senderId: seller, text: `the bike shop ${c} ${i}` }));
		await under.addMany(Array.from({ length: 12 }, (_, c) => conversation(c)).flat());
		const scope = Array.from({ length: 12 }, (_, c) => `c_cost_shop_${c}`);
		const { hits, stats } = await searchOnce("bike", scope);
		assert.deepEqual({ path: stats.path, scopeMessages: stats.scopeMessages, scopeTokens: stats.scopeTokens }, { path: "index", scopeMessages: 60, scopeTokens: 12 });
		assert.equal(hits.length, 20);
		assert.ok(hits.every((h) => scope.includes(h.message.conversationId)));
	});

	it("the path follows the scope's size, counted from last_seq", async () => {
		assert.equal((await searchOnce("bike", [mine])).stats.path, "scan");
		assert.equal((await searchOnce("bike", [busy])).stats.path, "index");
		assert.equal((await searchOnce("bike", [mine, busy])).stats.scopeMessages, 203);
		assert.equal((await searchOnce("bike", [mine, mine, "c_does_not_exist"])).stats.scopeMessages, 3);
	});
});

describe("SQLite search: databases from older versions", () => {
	/** The schema before versioning: store tables, and an external-content FTS5 index kept by triggers. */
	const VERSION_0_INDEX = `
		CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
		CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text); END;
		CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text); END;
		CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
			INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
			INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
		END;`;

	it("a version 0 database opens: migrated to the current version, the old index replaced, old and new messages found", async () => {
		const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-search-v0-"));
		try {
			// Made the way the code before versioning made it, then filled by that code's triggers.
			const old = new Database(path.join(dataDir, "parley.db"));
			old.exec(STORE_SCHEMA);
			old.exec(VERSION_0_INDEX);
			old.prepare(`INSERT INTO conversations (id, listing_id, buyer_id, seller_id, created_at, last_seq, last_activity_at) VALUES ('c_old', 'l', 'b', 's', 0, 2, 0)`).run();
			const insert = old.prepare(`INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, type, text, attachments, created_at) VALUES (?, 'c_old', ?, 'b', ?, 'text', ?, '[]', 0)`);
			insert.run("m_old_1", 1, "k1", "the old bike");
			insert.run("m_old_2", 2, "k2", "an old café");
			assert.equal(old.pragma("user_version", { simple: true }), 0);
			old.close();

			for (const scanUpTo of [undefined, 0]) {
				const under = await sqliteSearchUnderTest({ scanUpTo }, dataDir);
				const db = new Database(path.join(dataDir, "parley.db"), { readonly: true });
				assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
				assert.deepEqual(db.prepare(`SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'`).all(), [], "the old index and its triggers are gone");
				db.close();
				const texts = async (text: string) => (await under.search.search({ text, conversationIds: ["c_old"], limit: 20 })).map((h) => h.message.text);
				assert.deepEqual(await texts("old"), ["an old café", "the old bike"]);
				assert.deepEqual(await texts("cafe"), ["an old café"]);
				await under.store.appendMessage({ id: newMessageId(), conversationId: "c_old", senderId: "b", clientMsgId: newMessageId(), type: "text", text: `new bike ${String(scanUpTo)}`, attachments: [], now: Date.now() });
				assert.equal((await texts("bike")).length, scanUpTo === 0 ? 3 : 2, "a message appended after the migration is found too");
				await under.search.close();
				await under.store.close();
			}
		} finally {
			fs.rmSync(dataDir, { recursive: true, force: true });
		}
	});

	it("a database written by newer code is refused, not guessed at", async () => {
		const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-search-newer-"));
		try {
			const db = new Database(path.join(dataDir, "parley.db"));
			db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
			db.close();
			await assert.rejects(new SqliteStore(dataDir).open(), /newer than this code/);
			await assert.rejects(new SqliteSearch(dataDir).open(), /newer than this code/);
		} finally {
			fs.rmSync(dataDir, { recursive: true, force: true });
		}
	});

	it("rebuild() makes the index again from the messages", async () => {
		const under = await sqliteSearchUnderTest({ scanUpTo: 0 });
		try {
			await under.add(drafts("c_rebuild", ["rebuild me", "and me"]));
			await under.search.rebuild();
			await under.search.rebuild();
			assert.deepEqual((await under.search.search({ text: "me", conversationIds: ["c_rebuild"], limit: 10 })).map((h) => h.message.text), ["and me", "rebuild me"]);
		} finally {
			await under.close();
		}
	});
});
