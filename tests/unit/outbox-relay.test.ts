import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import type { Message } from "../../contract";
import { conversationIdFor, newMessageId } from "../../lib/ids";
import { SearchOutboxRelay } from "../../lib/search/outbox-relay";
import { SqliteStore } from "../../lib/store/sqlite-store";

const quiet = { warn: () => undefined, info: () => undefined };

describe("search outbox relay", () => {
	it("moves every appended message to the index once it accepts them, retrying through an outage", async () => {
		const store = new SqliteStore(fs.mkdtempSync(path.join(os.tmpdir(), "parley-outbox-")), true);
		await store.open();
		const id = conversationIdFor("s", "b", "s", "l");
		await store.openConversation({ id, listingId: "l", listingTitle: null, buyerId: "b", sellerId: "s", now: Date.now() });
		for (let i = 0; i < 30; i++) {
			await store.appendMessage({ id: newMessageId(), conversationId: id, senderId: "b", clientMsgId: `o${i}`, type: "text", text: `t${i}`, attachments: [], now: Date.now() });
		}
		const indexed: Message[] = [];
		let down = true;
		const relay = new SearchOutboxRelay(
			store.searchFeed!,
			async (messages) => {
				if (down) throw new Error("index unreachable");
				indexed.push(...messages);
			},
			quiet,
			{ batch: 7, idleMs: 10, maxBackoffMs: 20 },
		);
		relay.start();
		await new Promise((r) => setTimeout(r, 100));
		assert.equal(indexed.length, 0);
		assert.equal((await store.searchFeed!.backlog(100)).length, 30, "nothing leaves the outbox while the index is down");
		down = false;
		for (const deadline = Date.now() + 5000; indexed.length < 30 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
		await relay.stop();
		assert.deepEqual(indexed.map((m) => m.seq), Array.from({ length: 30 }, (_, i) => i + 1));
		assert.equal((await store.searchFeed!.backlog(100)).length, 0);
		await store.close();
	});

	it("a store that feeds no index keeps no outbox", async () => {
		const store = new SqliteStore(fs.mkdtempSync(path.join(os.tmpdir(), "parley-outbox-")));
		assert.equal(store.searchFeed, undefined);
	});
});
