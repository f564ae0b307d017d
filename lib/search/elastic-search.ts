/**
 * SearchIndex on Elasticsearch (cluster profile). Documents are written by an
 * indexer (at least once, in any order: each document's version is its message's
 * change number, so retries are harmless and an older edit never wins) and
 * searched with a server-side filter on the caller's conversations.
 *
 * The server we test against ships without analysis-common (no asciifolding,
 * no edge_ngram, only the built-in analyzers), so the application does the
 * language work: it splits and folds words exactly like the query side does and
 * indexes them in `text_folded` with the `whitespace` analyzer. Elasticsearch
 * then only matches terms, and the highlight is built in the application
 * (snippet.ts) on the original text from the same words, so the two can never disagree.
 */
import { Client, type estypes } from "@elastic/elasticsearch";
import type { Message, SearchHit } from "../../contract";
import { foldedQueryTerms, foldedText } from "./folding";
import type { FedSearchIndex, IndexableMessage, SearchQuery } from "./search-index";
import { highlight } from "./snippet";

export interface ElasticSearchOptions {
	/** e.g. http://127.0.0.1:9200 */
	node: string;
	/** Name of the index that holds the messages. */
	index: string;
	/**
	 * When index() and remove() resolve. "wait_for" (default): once the change is visible to
	 * searches, so an indexer that acks after index() means "searchable", without forcing extra
	 * refreshes (it rides the 1 s refresh). true forces a refresh per call (tests); false returns
	 * as soon as the change is durable in the translog (bulk loads, then refreshNow()).
	 */
	refresh?: boolean | "wait_for";
	/** 0 on a single node (a replica could never be placed and health would stay yellow). */
	replicas?: number;
	requestTimeoutMs?: number;
	/**
	 * An index made by an older schema: "refuse" (default) makes open() fail; "rebuild" drops it,
	 * creates it empty with the current mapping and sets `rebuilt`, so the owner replays the store.
	 */
	onOldSchema?: "refuse" | "rebuild";
}

/** Bump when the mapping or the folding changes: open() then refuses the old index until a reindex. */
const SCHEMA_VERSION = 2;

interface MessageDocument {
	id: string;
	conversationId: string;
	seq: number;
	senderId: string;
	clientMsgId: string;
	type: Message["type"];
	text: string;
	attachments: unknown[];
	createdAt: string;
	editedAt?: string;
	deletedAt?: string;
	changeSeq: number;
	memberIds: string[];
	/** The searchable form of text: folded words separated by spaces. */
	text_folded: string;
}

const MAPPINGS: estypes.MappingTypeMapping = {
	dynamic: "strict",
	_meta: { schemaVersion: SCHEMA_VERSION },
	properties: {
		id: { type: "keyword" },
		conversationId: { type: "keyword" },
		seq: { type: "long" },
		senderId: { type: "keyword" },
		clientMsgId: { type: "keyword", index: false },
		type: { type: "keyword" },
		// Kept for rebuilding the Message and for the highlight; searches go to text_folded.
		text: { type: "text", index: false },
		attachments: { type: "object", enabled: false },
		createdAt: { type: "date" },
		editedAt: { type: "date", index: false },
		deletedAt: { type: "date", index: false },
		changeSeq: { type: "long", index: false },
		memberIds: { type: "keyword" },
		text_folded: {
			type: "text",
			// Words are already split and folded here, so whitespace is the whole analysis.
			analyzer: "whitespace",
			// Short prefixes ("a", "ib") become term lookups instead of scanning the term dictionary.
			index_prefixes: { min_chars: 1, max_chars: 5 },
		},
	},
};

// ---------------------------------------------------------------- documents and queries

function toDocument({ message, memberIds }: IndexableMessage): MessageDocument {
	return {
		id: message.id,
		conversationId: message.conversationId,
		seq: message.seq,
		senderId: message.senderId,
		clientMsgId: message.clientMsgId,
		type: message.type,
		text: message.text,
		attachments: message.attachments,
		createdAt: message.createdAt,
		...(message.editedAt ? { editedAt: message.editedAt } : {}),
		...(message.deletedAt ? { deletedAt: message.deletedAt } : {}),
		changeSeq: message.changeSeq ?? 0,
		memberIds,
		// A deleted message keeps its document (so an older version cannot come back) but matches nothing.
		text_folded: message.deletedAt ? "" : foldedText(message.text),
	};
}

function toMessage(doc: MessageDocument): Message {
	const message: Message = {
		id: doc.id,
		conversationId: doc.conversationId,
		seq: doc.seq,
		senderId: doc.senderId,
		clientMsgId: doc.clientMsgId,
		type: doc.type,
		text: doc.text,
		attachments: doc.attachments,
		createdAt: doc.createdAt,
	};
	if (doc.editedAt) message.editedAt = doc.editedAt;
	if (doc.deletedAt) message.deletedAt = doc.deletedAt;
	if (doc.changeSeq > 0) message.changeSeq = doc.changeSeq;
	return message;
}

/** Every term must match; the last also as a prefix, with a whole-word match ranked higher. */
function matchAllTerms(terms: string[], conversationIds: string[]): estypes.QueryDslQueryContainer {
	const exact = terms.slice(0, -1).map((value): estypes.QueryDslQueryContainer => ({ term: { text_folded: { value } } }));
	const last = terms[terms.length - 1]!;
	const typing: estypes.QueryDslQueryContainer = {
		bool: {
			should: [{ term: { text_folded: { value: last, boost: 2 } } }, { prefix: { text_folded: { value: last } } }],
			minimum_should_match: 1,
		},
	};
	// A filter clause: the permission scope is applied by the engine, before ranking and the limit.
	return { bool: { must: [...exact, typing], filter: [{ terms: { conversationId: conversationIds } }] } };
}

/** Bulk answers 200 even when items failed: turn failed items into a rejection so the caller retries. */
function throwOnFailedItems(response: estypes.BulkResponse, action: string, harmless: (status: number) => boolean = () => false): void {
	if (!response.errors) return;
	const failed = response.items
		.map((item) => Object.values(item)[0]!)
		.filter((result) => result.error && !harmless(result.status));
	if (failed.length === 0) return;
	const first = failed[0]!;
	throw new Error(`elasticsearch ${action}: ${failed.length} of ${response.items.length} failed, e.g. ${first._id}: ${first.error?.type}: ${first.error?.reason}`);
}

// ---------------------------------------------------------------- the index

export class ElasticSearchIndex implements FedSearchIndex {
	readonly engine = "elasticsearch";
	private client: Client | null = null;

	constructor(private readonly options: ElasticSearchOptions) {}

	private get es(): Client {
		if (!this.client) throw new Error("ElasticSearchIndex is not open");
		return this.client;
	}

	/** True when open() found an index of an older schema and made it anew: it needs a full reindex. */
	rebuilt = false;

	/** Creates the index if it is missing and waits until it can serve; safe to call again. */
	async open(): Promise<void> {
		this.client ??= new Client({ node: this.options.node, requestTimeout: this.options.requestTimeoutMs ?? 30_000 });
		await this.waitForHealth();
		if (!(await this.es.indices.exists({ index: this.options.index }))) await this.createIndex();
		else if (!(await this.schemaIsCurrent())) {
			if (this.options.onOldSchema !== "rebuild") throw new Error(`elasticsearch index ${this.options.index} has an older schema, this code needs ${SCHEMA_VERSION}: reindex it`);
			await this.reset();
			this.rebuilt = true;
		}
		await this.waitForHealth(this.options.index);
	}

	async close(): Promise<void> {
		await this.client?.close();
		this.client = null;
	}

	/**
	 * Writes the messages. The document's version is the message's change number (external_gte),
	 * so a retry is harmless and an older version delivered late (at least once, in any order)
	 * never replaces a newer edit or brings back a deleted text. Rejects if any other item failed.
	 */
	async index(docs: IndexableMessage[]): Promise<void> {
		if (docs.length === 0) return;
		const operations = docs.flatMap((doc) => [
			{ index: { _index: this.options.index, _id: doc.message.id, version: doc.message.changeSeq ?? 0, version_type: "external_gte" as const } },
			toDocument(doc),
		]);
		const response = await this.es.bulk({ operations, refresh: this.refreshPolicy });
		// 409: the index already holds a newer version of that message.
		throwOnFailedItems(response, "index", (status) => status === 409);
	}

	/** Makes the messages unsearchable; ids that are not indexed are fine (at-least-once delivery). */
	async remove(messageIds: string[]): Promise<void> {
		if (messageIds.length === 0) return;
		const operations = messageIds.map((id) => ({ delete: { _index: this.options.index, _id: id } }));
		const response = await this.es.bulk({ operations, refresh: this.refreshPolicy });
		throwOnFailedItems(response, "remove", (status) => status === 404);
	}

	/** Drops every document and recreates the index empty, with the current mapping (for a full reindex). */
	async reset(): Promise<void> {
		await this.es.indices.delete({ index: this.options.index }, { ignore: [404] });
		await this.createIndex();
		await this.waitForHealth(this.options.index);
	}

	/** Makes everything written so far searchable (after bulk loads with refresh: false). */
	async refreshNow(): Promise<void> {
		await this.es.indices.refresh({ index: this.options.index });
	}

	async search(q: SearchQuery): Promise<SearchHit[]> {
		const terms = foldedQueryTerms(q.text);
		if (terms.length === 0 || q.conversationIds.length === 0 || q.limit <= 0) return [];
		const response = await this.es.search<MessageDocument>({
			index: this.options.index,
			size: q.limit,
			query: matchAllTerms(terms, q.conversationIds),
			sort: [{ _score: { order: "desc" } }, { createdAt: { order: "desc" } }],
			_source_excludes: ["text_folded", "memberIds"],
			track_total_hits: false,
		});
		return response.hits.hits.map((hit) => {
			const message = toMessage(hit._source!);
			return { message, highlight: highlight(message.text, terms) };
		});
	}

	private get refreshPolicy(): boolean | "wait_for" {
		return this.options.refresh ?? "wait_for";
	}

	private async createIndex(): Promise<void> {
		const settings: estypes.IndicesIndexSettings = {
			number_of_shards: 1,
			number_of_replicas: this.options.replicas ?? 0,
			// Explicit, so a search-idle shard still refreshes and "wait_for" stays bounded by ~1 s.
			refresh_interval: "1s",
		};
		try {
			await this.es.indices.create({ index: this.options.index, settings, mappings: MAPPINGS });
		} catch (err) {
			// Another node opening at the same moment created it: that is the idempotent outcome.
			if (errorType(err) !== "resource_already_exists_exception") throw err;
		}
	}

	/** The index's schema is this code's; a newer one is refused outright (never dropped by an older build). */
	private async schemaIsCurrent(): Promise<boolean> {
		const mappings = await this.es.indices.getMapping({ index: this.options.index });
		for (const [name, { mappings: mapping }] of Object.entries(mappings)) {
			const version = Number(mapping._meta?.["schemaVersion"] ?? 0);
			if (version > SCHEMA_VERSION) throw new Error(`elasticsearch index ${name} has schema ${version}, newer than this code's ${SCHEMA_VERSION}: upgrade Parley`);
			if (version < SCHEMA_VERSION) return false;
		}
		return true;
	}

	/** Uses cluster health: this server has no root endpoint, so the client's ping() and info() fail. */
	private async waitForHealth(index?: string): Promise<void> {
		const health = await this.es.cluster.health({ index, wait_for_status: "yellow", timeout: "30s" });
		if (health.timed_out) throw new Error(`elasticsearch ${index ?? "cluster"} not ready: health ${health.status}`);
	}
}

function errorType(err: unknown): string | undefined {
	const body = (err as { meta?: { body?: { error?: { type?: string } } } }).meta?.body;
	return body?.error?.type;
}
