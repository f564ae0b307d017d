import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Message } from "../../contract";
import { newMessageId } from "../../lib/ids";
import { SqliteSearch } from "../../lib/search/sqlite-search";
import { SqliteStore } from "../../lib/store/sqlite-store";
import { searchBehaviour, type MessageDraft } from "../support/search-behaviour";

// Messages reach FTS5 the production way: appended through the store, indexed by its triggers.
searchBehaviour("sqlite-fts5", async () => {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-search-"));
	const store = new SqliteStore(dataDir);
	await store.open();
	const search = new SqliteSearch(dataDir);
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
		search,
		async add(drafts) {
			const messages: Message[] = [];
			for (const draft of drafts) messages.push(await append(draft));
			return messages;
		},
		async close() {
			await search.close();
			await store.close();
			fs.rmSync(dataDir, { recursive: true, force: true });
		},
	};
});
