/**
 * The behaviour every SearchIndex engine must have, written once. Each engine's
 * test file calls searchBehaviour with a factory that says how messages reach
 * that engine (SQLite: appended through the store, indexed by triggers;
 * Elasticsearch: handed to index() like the indexer will).
 *
 * Every test works in conversations of its own, so tests share one index
 * without seeing each other's messages (that scoping is itself under test).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { Message } from "../../contract";
import type { SearchIndex } from "../../lib/search/search-index";

export interface MessageDraft {
	conversationId: string;
	buyerId: string;
	sellerId: string;
	senderId: string;
	text: string;
}

export interface SearchEngineUnderTest {
	/** Already open. */
	search: SearchIndex;
	/** Makes the drafts searchable the way production feeds this engine, in order; returns the stored messages. */
	add(drafts: MessageDraft[]): Promise<Message[]>;
	/** Engines fed by an at-least-once indexer: hand the same messages over again. */
	reindex?(messages: Message[]): Promise<void>;
	remove?(messageIds: string[]): Promise<void>;
	close(): Promise<void>;
}

/** `fed`: the engine is fed by an indexer (Elasticsearch), so re-index and remove are tested too. */
export function searchBehaviour(engine: string, create: () => Promise<SearchEngineUnderTest>, options: { fed: boolean } = { fed: false }): void {
	describe(`SearchIndex behaviour: ${engine}`, () => {
		let under: SearchEngineUnderTest;

		before(async () => {
			under = await create();
		});
		after(async () => {
			await under?.close();
		});

		/** A fresh conversation holding these texts, sent alternately by its buyer and seller. */
		async function conversationWith(...texts: string[]): Promise<{ id: string; messages: Message[] }> {
			const id = `c_search_${randomUUID()}`;
			const [buyerId, sellerId] = [`buyer-${id}`, `seller-${id}`];
			const drafts = texts.map((text, i) => ({ conversationId: id, buyerId, sellerId, senderId: i % 2 ? sellerId : buyerId, text }));
			return { id, messages: await under.add(drafts) };
		}

		const search = (text: string, conversationIds: string[], limit = 20) => under.search.search({ text, conversationIds, limit });
		const textsOf = async (text: string, conversationIds: string[], limit?: number) =>
			(await search(text, conversationIds, limit)).map((hit) => hit.message.text).sort();

		it("every word of the query must match, in any order", async () => {
			const c = await conversationWith("the blue bike is for sale", "a red bike", "blue sky tonight");
			assert.deepEqual(await textsOf("blue bike", [c.id]), ["the blue bike is for sale"]);
			assert.deepEqual(await textsOf("bike blue", [c.id]), ["the blue bike is for sale"]);
			assert.deepEqual(await textsOf("bike", [c.id]), ["a red bike", "the blue bike is for sale"]);
			assert.deepEqual(await textsOf("green bike", [c.id]), []);
		});

		it("ignores case and accents, both ways", async () => {
			const c = await conversationWith("Un Café crème, s'il vous plaît", "cafe noir", "NAÏVE question");
			assert.deepEqual(await textsOf("cafe", [c.id]), ["Un Café crème, s'il vous plaît", "cafe noir"]);
			assert.deepEqual(await textsOf("CAFÉ", [c.id]), ["Un Café crème, s'il vous plaît", "cafe noir"]);
			assert.deepEqual(await textsOf("creme plait", [c.id]), ["Un Café crème, s'il vous plaît"]);
			assert.deepEqual(await textsOf("naive", [c.id]), ["NAÏVE question"]);
		});

		it("the last word matches as a prefix, the others as whole words", async () => {
			const c = await conversationWith("my IBAN for the transfer", "ibis bird");
			assert.deepEqual(await textsOf("iba", [c.id]), ["my IBAN for the transfer"]);
			assert.deepEqual(await textsOf("transfer iba", [c.id]), ["my IBAN for the transfer"]);
			assert.deepEqual(await textsOf("i", [c.id]), ["ibis bird", "my IBAN for the transfer"]);
			assert.deepEqual(await textsOf("iba transfer", [c.id]), [], "only the last word is a prefix");
		});

		it("finds messages only in the conversations it is given", async () => {
			const mine = await conversationWith("the secret code is 4711");
			const theirs = await conversationWith("another secret here");
			assert.deepEqual(await textsOf("secret", [theirs.id]), ["another secret here"]);
			assert.deepEqual(await textsOf("secret", [mine.id, theirs.id]), ["another secret here", "the secret code is 4711"]);
			assert.deepEqual(await textsOf("4711", [theirs.id]), []);
			assert.deepEqual(await search("secret", []), [], "no conversations, no hits");
			assert.deepEqual(await search("secret", ["c_that_does_not_exist"]), []);
		});

		it("searches every conversation of a scope of hundreds", async () => {
			const run = randomUUID();
			const drafts = Array.from({ length: 250 }, (_, i) => {
				const id = `c_search_many_${run}_${i}`;
				return { conversationId: id, buyerId: `buyer-${id}`, sellerId: `seller-${id}`, senderId: `buyer-${id}`, text: `parcel number ${i}` };
			});
			await under.add(drafts);
			const ids = drafts.map((d) => d.conversationId);
			const all = await search("parcel", ids, 300);
			assert.deepEqual(all.map((h) => h.message.text).sort(), drafts.map((d) => d.text).sort());
			const some = await search("parcel", ids, 10);
			assert.equal(new Set(some.map((h) => h.message.conversationId)).size, 10);
			assert.deepEqual(await textsOf("parcel 249", ids), ["parcel number 249"]);
		});

		it("scopes before the limit: other conversations' better matches never crowd mine out", async () => {
			const busy = await conversationWith(...Array.from({ length: 30 }, (_, i) => `bike bike bike offer ${i}`));
			const mine = await conversationWith("is the bike still available?");
			const hits = await search("bike", [mine.id], 5);
			assert.deepEqual(hits.map((h) => h.message.conversationId), [mine.id]);
			assert.equal((await search("bike", [busy.id], 5)).length, 5);
		});

		it("ranks messages holding the last word whole above those where it only starts a word", async () => {
			// The prefix-only match is the newer one, so this is not newest-first by accident.
			const c = await conversationWith("a bike here", "a bikes here");
			const ranked = async (text: string, limit?: number) => (await search(text, [c.id], limit)).map((hit) => hit.message.text);
			assert.deepEqual(await ranked("bike"), ["a bike here", "a bikes here"]);
			assert.deepEqual(await ranked("bike", 1), ["a bike here"], "the limit keeps the best match");
			assert.deepEqual(await ranked("a bike"), ["a bike here", "a bikes here"]);
			assert.deepEqual(await ranked("bikes"), ["a bikes here"]);
		});

		it("returns the stored message with each hit", async () => {
			const c = await conversationWith("see you at the station");
			const [hit] = await search("station", [c.id]);
			assert.deepEqual(hit?.message, c.messages[0]);
		});

		it("highlights matches in <mark> and escapes the message's HTML", async () => {
			const c = await conversationWith(`<b>IBAN</b> & "quotes" 'single'`, "Café <script>x</script>");
			const [iban] = await search("iban", [c.id]);
			assert.equal(iban?.highlight, `&lt;b&gt;<mark>IBAN</mark>&lt;/b&gt; &amp; &quot;quotes&quot; &#39;single&#39;`);
			const [prefix] = await search("iba", [c.id]);
			assert.equal(prefix?.highlight, `&lt;b&gt;<mark>IBAN</mark>&lt;/b&gt; &amp; &quot;quotes&quot; &#39;single&#39;`);
			const [cafe] = await search("cafe", [c.id]);
			assert.equal(cafe?.highlight, `<mark>Café</mark> &lt;script&gt;x&lt;/script&gt;`);
		});

		it("marks every matching word of a long message and cuts it with an ellipsis", async () => {
			const long = `${"filler ".repeat(30)}the blue bike ${"more ".repeat(30)}end`;
			const c = await conversationWith(long);
			const [hit] = await search("blue bike", [c.id]);
			assert.ok(hit);
			assert.match(hit.highlight, /<mark>blue<\/mark> <mark>bike<\/mark>/);
			assert.ok(hit.highlight.length < long.length, "a long message is cut to a snippet");
			assert.ok(hit.highlight.includes("…"));
		});

		it("treats query syntax as plain words and never fails on it", async () => {
			const c = await conversationWith(`Is the "blue bike" (AND helmet) OR NOT: price* 50% off? title:bike`);
			const found = [`"blue bike"`, `"blue`, `(AND`, `and`, `OR`, `NOT:`, `price*`, `helmet)`, `title:bike`, `bike AND helmet`, `-bike`, `^bike`, `blue~`, `{bike}`, `[bike]`, `bike\\`, `bike/`, `+blue +bike`, `50%`];
			for (const q of found) assert.equal((await search(q, [c.id])).length, 1, `query ${q}`);
			const syntaxOnly = [`"`, `""`, `*`, `()`, `:`, `^`, `-`, `\\`, `/`, `   `, `""*():^~{}[]`, ``];
			for (const q of syntaxOnly) assert.deepEqual(await search(q, [c.id]), [], `query ${JSON.stringify(q)}`);
			assert.deepEqual(await search("NEAR(blue bike)", [c.id]), [], "NEAR is a word like any other, and it is not in the message");
		});

		it("returns at most limit hits", async () => {
			const c = await conversationWith(...Array.from({ length: 5 }, (_, i) => `offer number ${i}`));
			assert.equal((await search("offer", [c.id], 3)).length, 3);
			assert.equal((await search("offer", [c.id], 10)).length, 5);
		});

		// Only engines fed by an indexer have these operations; the others do not register the tests.
		const reindex = (messages: Message[]) => under.reindex!(messages);
		const remove = (ids: string[]) => under.remove!(ids);
		if (options.fed) it("re-indexing the same message does not duplicate it", async () => {
			const c = await conversationWith("duplicate me please");
			await reindex(c.messages);
			await reindex(c.messages);
			assert.deepEqual(await textsOf("duplicate", [c.id]), ["duplicate me please"]);
		});

		if (options.fed) it("a removed message is no longer found, and removing it again is harmless", async () => {
			const c = await conversationWith("remove this one", "keep this one");
			await remove([c.messages[0]!.id]);
			assert.deepEqual(await textsOf("one", [c.id]), ["keep this one"]);
			await remove([c.messages[0]!.id, "m_never_indexed"]);
		});
	});
}
