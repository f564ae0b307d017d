/**
 * T5 (design.md §6): search p99 over a large corpus, for one engine.
 *
 *   npx tsx bench/search-corpus.ts --engine sqlite --messages 1000000
 *   npx tsx bench/search-corpus.ts --engine elasticsearch --messages 1000000   (bash scripts/engines.sh start elasticsearch)
 *
 * Generates a deterministic chat corpus (marketplace words with a Zipf-like frequency, 2-14 words
 * a message, some accents, prices), loads it the way production feeds each engine (SQLite: appends
 * through SqliteStore, indexed by its triggers; Elasticsearch: ElasticSearchIndex.index() in bulk
 * batches), then times sequential searches of 1-3 content words, the last often a prefix as if
 * typed, each scoped to one user's ~20 conversations, like search.messages. Prints one JSON line.
 *
 * A scope mix, for the engines whose cost depends on the scope (SQLite scans small scopes and uses
 * FTS5 for large ones): a few busy users (shops, support agents) in a large share of the conversations,
 * and a share of the queries from them:
 *
 *   npx tsx bench/search-corpus.ts --engine sqlite --messages 1000000 --busy-users 5 --busy-share 0.1 --busy-queries 0.1
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Client } from "@elastic/elasticsearch";
import type { Message } from "../contract";
import { ElasticSearchIndex } from "../lib/search/elastic-search";
import type { IndexableMessage, SearchIndex } from "../lib/search/search-index";
import { SqliteSearch } from "../lib/search/sqlite-search";
import { SqliteStore } from "../lib/store/sqlite-store";

const USAGE = `usage: npx tsx bench/search-corpus.ts --engine sqlite|elasticsearch [flags]
  --messages <N>        corpus size (default 1000000)
  --conversations <N>   conversations the messages are spread over (default 50000)
  --users <N>           users; each is in ~2*conversations/users conversations (default 5000)
  --queries <N>         timed searches (default 1000, after 100 untimed ones)
  --limit <N>           hits asked per search (default 20)
  --seed <N>            corpus and query seed (default 1)
  --node <url>          Elasticsearch (default $PARLEY_ELASTICSEARCH_URL or http://127.0.0.1:9200)
  --keep                keep the loaded corpus (SQLite data dir / Elasticsearch index) for --reuse
  --reuse <dir|index>   search an existing corpus made with the same flags instead of loading one
  --busy-users <N>      users who are the seller in --busy-share of the conversations (default 0)
  --busy-share <f>      share of the conversations that have a busy seller (default 0.2)
  --busy-queries <f>    share of the queries made by busy users (default 0.1)
  --scan-up-to <N>      SQLite: scan scopes of at most N messages, FTS5 above (default: the engine's)
  --check-paths         SQLite: also run every query through both paths and count differing answers`;

interface Options {
	engine: "sqlite" | "elasticsearch";
	messages: number;
	conversations: number;
	users: number;
	queries: number;
	limit: number;
	seed: number;
	node: string;
	keep: boolean;
	reuse: string | null;
	busyUsers: number;
	busyShare: number;
	busyQueries: number;
	scanUpTo: number | undefined;
	checkPaths: boolean;
}

function parseOptions(argv: string[]): Options {
	const options: Options = {
		engine: "sqlite", messages: 1_000_000, conversations: 50_000, users: 5_000, queries: 1000, limit: 20, seed: 1,
		node: process.env.PARLEY_ELASTICSEARCH_URL ?? "http://127.0.0.1:9200", keep: false, reuse: null,
		busyUsers: 0, busyShare: 0.2, busyQueries: 0.1, scanUpTo: undefined, checkPaths: false,
	};
	let engineGiven = false;
	const args = [...argv];
	const value = (flag: string): string => {
		const v = args.shift();
		if (v === undefined) fail(`${flag} needs a value`);
		return v;
	};
	const count = (flag: string): number => {
		const n = Number(value(flag));
		if (!Number.isInteger(n) || n < 1) fail(`${flag} must be a positive integer`);
		return n;
	};
	const share = (flag: string): number => {
		const f = Number(value(flag));
		if (!(f >= 0 && f <= 1)) fail(`${flag} must be between 0 and 1`);
		return f;
	};
	while (args.length > 0) {
		const flag = args.shift()!;
		switch (flag) {
			case "--engine": {
				const engine = value(flag);
				if (engine !== "sqlite" && engine !== "elasticsearch") fail("--engine must be sqlite or elasticsearch");
				options.engine = engine;
				engineGiven = true;
				break;
			}
			case "--messages": options.messages = count(flag); break;
			case "--conversations": options.conversations = count(flag); break;
			case "--users": options.users = count(flag); break;
			case "--queries": options.queries = count(flag); break;
			case "--limit": options.limit = count(flag); break;
			case "--seed": options.seed = count(flag); break;
			case "--node": options.node = value(flag); break;
			case "--keep": options.keep = true; break;
			case "--reuse": options.reuse = value(flag); break;
			case "--busy-users": options.busyUsers = count(flag); break;
			case "--busy-share": options.busyShare = share(flag); break;
			case "--busy-queries": options.busyQueries = share(flag); break;
			case "--scan-up-to": {
				const n = Number(value(flag));
				if (!Number.isInteger(n) || n < 0) fail(`${flag} must be an integer >= 0`);
				options.scanUpTo = n;
				break;
			}
			case "--check-paths": options.checkPaths = true; break;
			default: fail(`unknown flag ${flag}`);
		}
	}
	if (!engineGiven) fail("--engine is required");
	if (options.users < 2) fail("--users must be at least 2");
	if (options.busyUsers >= options.users) fail("--busy-users must be fewer than --users");
	if (options.engine !== "sqlite" && (options.scanUpTo !== undefined || options.checkPaths)) fail("--scan-up-to and --check-paths are for --engine sqlite");
	return options;
}

function fail(message: string): never {
	console.error(`search-corpus: ${message}\n${USAGE}`);
	process.exit(2);
}

const log = (message: string) => console.error(`search-corpus: ${message}`);

// ---------------------------------------------------------------- corpus

/** mulberry32: small, fast and deterministic, so a seed always gives the same corpus and queries. */
function randomSource(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const FUNCTION_WORDS = `i you the a is it to and for of in on my your this that can we be with at do not are have
	me what just if so ok yes no please thanks hi hello would will still there`.split(/\s+/);

const CONTENT_WORDS = `price available bike pick up tomorrow today cash delivery shipping condition new used
	offer euros dollars phone address meet station evening morning weekend photo photos size color
	blue red black white green grey silver iban transfer paypal payment paid receipt invoice refund
	broken scratch scratches battery charger box original warranty bought months year old model
	brand works perfectly perfect good great fine sold reserved interested discount cheaper last final
	lowest deal sofa table chair desk lamp bed mattress wardrobe shelf mirror carpet curtains fridge
	oven washing machine dryer dishwasher microwave kettle toaster coffee laptop tablet screen
	keyboard mouse monitor printer camera lens tripod headphones speaker console games controller
	watch ring necklace bag shoes boots jacket coat dress shirt jeans sweater helmet gloves tent
	stroller crib toys books vinyl records guitar piano violin drums bicycle scooter car tyres wheels
	frame saddle pedals gears brakes chain lock lights basket garden tools drill saw ladder mower
	parking street number floor building door code bell call message later sorry late traffic
	minutes hour wait waiting here outside inside downstairs upstairs kids dog cat smoke free clean
	dirty smell wash repaired repair fixed missing parts manual cable adapter plug remote keys
	café crème prix très délai reçu gebraucht fahrrad größe año tamaño señal über münchen zürich
	kraków łódź são paulo montréal québec nice lyon paris berlin madrid lisbon rome vienna`.split(/\s+/);

/** Picks index i with probability ~ 1/(i+1): a few words are everywhere, most are rare, as in real chat. */
function zipfPicker(size: number, random: () => number): () => number {
	const cumulative: number[] = [];
	let total = 0;
	for (let i = 0; i < size; i++) cumulative.push((total += 1 / (i + 1)));
	return () => {
		const target = random() * total;
		let lo = 0;
		let hi = size - 1;
		while (lo < hi) {
			const mid = (lo + hi) >> 1;
			if (cumulative[mid]! < target) lo = mid + 1;
			else hi = mid;
		}
		return lo;
	};
}

interface Corpus {
	/** conversation index -> [buyer, seller] user index */
	members: [number, number][];
	/** user index -> conversation indexes */
	conversationsOf: number[][];
}

function conversationId(i: number): string {
	return `c_bench_${i}`;
}

function userId(i: number): string {
	return `u_bench_${i}`;
}

function buildConversations(options: Options, random: () => number): Corpus {
	const conversationsOf: number[][] = Array.from({ length: options.users }, () => []);
	const members: [number, number][] = [];
	for (let c = 0; c < options.conversations; c++) {
		const buyer = Math.floor(random() * options.users);
		let seller = (buyer + 1 + Math.floor(random() * (options.users - 1))) % options.users;
		// Users 0..busyUsers-1 are busy sellers. Without them no extra number is drawn: same corpus as before.
		if (options.busyUsers > 0 && random() < options.busyShare) {
			const busy = Math.floor(random() * options.busyUsers);
			if (busy !== buyer) seller = busy;
		}
		members.push([buyer, seller]);
		conversationsOf[buyer]!.push(c);
		conversationsOf[seller]!.push(c);
	}
	return { members, conversationsOf };
}

function messageTextSource(random: () => number): () => string {
	const functionWord = zipfPicker(FUNCTION_WORDS.length, random);
	const contentWord = zipfPicker(CONTENT_WORDS.length, random);
	return () => {
		const length = 2 + Math.floor(random() * 13);
		const words: string[] = [];
		for (let i = 0; i < length; i++) {
			const r = random();
			if (r < 0.45) words.push(FUNCTION_WORDS[functionWord()]!);
			else if (r < 0.95) words.push(CONTENT_WORDS[contentWord()]!);
			else words.push(String(5 + Math.floor(random() * 995)));
		}
		if (random() < 0.3) words[0] = words[0]!.charAt(0).toUpperCase() + words[0]!.slice(1);
		return words.join(" ") + (random() < 0.3 ? "?" : "");
	};
}

/** The messages in order: each goes to a random conversation, with that conversation's next seq. */
function* generateMessages(options: Options, corpus: Corpus, random: () => number): Generator<IndexableMessage> {
	const text = messageTextSource(random);
	const seqs = new Uint32Array(options.conversations);
	const start = Date.UTC(2026, 0, 1);
	for (let n = 0; n < options.messages; n++) {
		const c = Math.floor(random() * options.conversations);
		const [buyer, seller] = corpus.members[c]!;
		const sender = random() < 0.5 ? buyer : seller;
		const message: Message = {
			id: `m_bench_${n}`,
			conversationId: conversationId(c),
			seq: ++seqs[c]!,
			senderId: userId(sender),
			clientMsgId: `bench-${n}`,
			type: "text",
			text: text(),
			attachments: [],
			createdAt: new Date(start + n * 1000).toISOString(),
		};
		yield { message, memberIds: [userId(buyer), userId(seller)] };
	}
}

function* batches<T>(items: Iterable<T>, size: number): Generator<T[]> {
	let batch: T[] = [];
	for (const item of items) {
		batch.push(item);
		if (batch.length === size) {
			yield batch;
			batch = [];
		}
	}
	if (batch.length > 0) yield batch;
}

function progress(done: number, total: number, startedMs: number): void {
	if (done % 100_000 !== 0 && done !== total) return;
	const seconds = (performance.now() - startedMs) / 1000;
	log(`loaded ${done}/${total} (${Math.round(done / seconds)}/s)`);
}

// ---------------------------------------------------------------- engines

interface Engine {
	search: SearchIndex;
	load(messages: Iterable<IndexableMessage>, corpus: Corpus): Promise<void>;
	dispose(): Promise<void>;
	/** SQLite: how many searches took each path since the last call. */
	takePaths?(): Record<string, number>;
	/** SQLite: the same index forced down each path, for --check-paths. */
	paths?: { scan: SearchIndex; index: SearchIndex };
}

async function sqliteEngine(options: Options): Promise<Engine> {
	const dataDir = options.reuse ?? fs.mkdtempSync(path.join(os.tmpdir(), "parley-search-bench-"));
	const store = new SqliteStore(dataDir);
	await store.open();
	let taken = { scan: 0, index: 0 };
	const search = new SqliteSearch(dataDir, { scanUpTo: options.scanUpTo, onSearch: ({ path }) => taken[path]++ });
	await search.open();
	const paths = options.checkPaths
		? { scan: new SqliteSearch(dataDir, { scanUpTo: Number.MAX_SAFE_INTEGER }), index: new SqliteSearch(dataDir, { scanUpTo: 0 }) }
		: undefined;
	await paths?.scan.open();
	await paths?.index.open();
	return {
		search,
		paths,
		takePaths() {
			const result = taken;
			taken = { scan: 0, index: 0 };
			return result;
		},
		async load(messages, corpus) {
			const started = performance.now();
			for (const [c, [buyer, seller]] of corpus.members.entries()) {
				await store.openConversation({ id: conversationId(c), listingId: `l${c}`, listingTitle: null, buyerId: userId(buyer), sellerId: userId(seller), now: started });
			}
			let done = 0;
			// Many appends in flight at once, so the store's group commit batches them as under load.
			for (const batch of batches(messages, 4096)) {
				await Promise.all(batch.map(({ message: m }) => store.appendMessage({
					id: m.id, conversationId: m.conversationId, senderId: m.senderId, clientMsgId: m.clientMsgId,
					type: m.type, text: m.text, attachments: [], now: Date.parse(m.createdAt),
				})));
				progress((done += batch.length), options.messages, started);
			}
		},
		async dispose() {
			await paths?.scan.close();
			await paths?.index.close();
			await search.close();
			await store.close();
			if (options.keep) log(`kept the corpus in ${dataDir} (--reuse ${dataDir})`);
			else if (!options.reuse) fs.rmSync(dataDir, { recursive: true, force: true });
		},
	};
}

async function elasticsearchEngine(options: Options): Promise<Engine> {
	const index = options.reuse ?? `parley-bench-search-${options.seed}-${options.messages}`;
	// Bulk load: return once durable, refresh once at the end, instead of a refresh per batch.
	const search = new ElasticSearchIndex({ node: options.node, index, refresh: false, requestTimeoutMs: 120_000 });
	await search.open();
	return {
		search,
		async load(messages) {
			await search.reset();
			const started = performance.now();
			let done = 0;
			const inFlight = new Set<Promise<void>>();
			// Two bulks in flight: one being indexed while the next one travels.
			for (const batch of batches(messages, 5000)) {
				const request = search.index(batch).then(() => progress((done += batch.length), options.messages, started));
				inFlight.add(request);
				void request.finally(() => inFlight.delete(request)).catch(() => {});
				if (inFlight.size >= 2) await Promise.race(inFlight);
			}
			await Promise.all(inFlight);
			await search.refreshNow();
		},
		async dispose() {
			await search.close();
			if (options.keep) log(`kept the index ${index} (--reuse ${index})`);
			else if (!options.reuse) await dropIndex(options.node, index);
		},
	};
}

async function dropIndex(node: string, index: string): Promise<void> {
	const client = new Client({ node });
	await client.indices.delete({ index }, { ignore: [404] });
	await client.close();
}

// ---------------------------------------------------------------- queries

interface Query {
	text: string;
	conversationIds: string[];
	/** Made by a busy user (--busy-users). */
	busy: boolean;
}

/** 1-3 content words (as users search "blue bike", not "the"); half the time the last one is half typed. */
function generateQueries(options: Options, corpus: Corpus, random: () => number, count: number): Query[] {
	const contentWord = zipfPicker(CONTENT_WORDS.length, random);
	const users = corpus.conversationsOf.map((_, u) => u).filter((u) => corpus.conversationsOf[u]!.length > 0);
	return Array.from({ length: count }, () => {
		// Without busy users no extra number is drawn: the same queries as before the scope mix existed.
		const busy = options.busyUsers > 0 && random() < options.busyQueries;
		const user = busy ? Math.floor(random() * options.busyUsers) : users[Math.floor(random() * users.length)]!;
		const words = Array.from({ length: 1 + Math.floor(random() * 3) }, () => CONTENT_WORDS[contentWord()]!);
		const last = words[words.length - 1]!;
		if (last.length > 3 && random() < 0.5) words[words.length - 1] = last.slice(0, 2 + Math.floor(random() * (last.length - 2)));
		return { text: words.join(" "), conversationIds: corpus.conversationsOf[user]!.map(conversationId), busy };
	});
}

/** Messages per conversation index, from the generator alone (so --reuse knows them too). */
function messagesPerConversation(options: Options): Uint32Array {
	const random = randomSource(options.seed);
	const corpus = buildConversations(options, random);
	const counts = new Uint32Array(options.conversations);
	for (const { message } of generateMessages(options, corpus, random)) counts[Number(message.conversationId.slice("c_bench_".length))]!++;
	return counts;
}

function percentile(sortedMs: number[], p: number): number {
	return sortedMs[Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1)]!;
}

async function timeQueries(search: SearchIndex, queries: Query[], limit: number): Promise<{ latenciesMs: number[]; hits: number }> {
	const latenciesMs: number[] = [];
	let hits = 0;
	for (const q of queries) {
		const started = performance.now();
		const result = await search.search({ text: q.text, conversationIds: q.conversationIds, limit });
		latenciesMs.push(performance.now() - started);
		hits += result.length;
	}
	return { latenciesMs, hits };
}

const round = (ms: number) => Math.round(ms * 100) / 100;

function summary(values: number[]): { p50: number; p90: number; p99: number; max: number } {
	const sorted = [...values].sort((a, b) => a - b);
	return { p50: round(percentile(sorted, 50)), p90: round(percentile(sorted, 90)), p99: round(percentile(sorted, 99)), max: round(sorted[sorted.length - 1]!) };
}

/** Runs every query down both SQLite paths; returns how many answers differ (ids, order or highlight). */
async function comparePaths(paths: NonNullable<Engine["paths"]>, queries: Query[], limit: number): Promise<number> {
	let differ = 0;
	for (const q of queries) {
		const [scan, index] = await Promise.all([paths.scan, paths.index].map((s) => s.search({ text: q.text, conversationIds: q.conversationIds, limit })));
		const key = (hits: typeof scan) => JSON.stringify(hits!.map((h) => [h.message.id, h.highlight]));
		if (key(scan) !== key(index)) {
			if (differ++ === 0) log(`paths differ for ${JSON.stringify(q.text)}: scan ${key(scan)} index ${key(index)}`);
		}
	}
	return differ;
}

async function main(): Promise<void> {
	const options = parseOptions(process.argv.slice(2));
	const random = randomSource(options.seed);
	const corpus = buildConversations(options, random);
	const engine = options.engine === "sqlite" ? await sqliteEngine(options) : await elasticsearchEngine(options);
	try {
		let loadSeconds: number | null = null;
		if (!options.reuse) {
			log(`loading ${options.messages} messages into ${engine.search.engine}`);
			const started = performance.now();
			await engine.load(generateMessages(options, corpus, random), corpus);
			loadSeconds = Math.round((performance.now() - started) / 100) / 10;
		}
		// Queries have their own seed, so --reuse times the same queries as the run that loaded.
		const queries = generateQueries(options, corpus, randomSource(options.seed + 1), 100 + options.queries);
		await timeQueries(engine.search, queries.slice(0, 100), options.limit);
		engine.takePaths?.();
		const timed = queries.slice(100);
		const { latenciesMs, hits } = await timeQueries(engine.search, timed, options.limit);
		const paths = engine.takePaths?.();
		const scopes = queries.map((q) => q.conversationIds.length);
		const counts = messagesPerConversation(options);
		const scopeMessages = timed.map((q) => q.conversationIds.reduce((n, id) => n + counts[Number(id.slice("c_bench_".length))]!, 0));
		const busy = (wanted: boolean) => {
			const ms = latenciesMs.filter((_, i) => timed[i]!.busy === wanted);
			const scope = scopeMessages.filter((_, i) => timed[i]!.busy === wanted);
			return ms.length === 0 ? null : { queries: ms.length, scopeMessages: { mean: Math.round(scope.reduce((a, b) => a + b, 0) / scope.length), max: Math.max(...scope) }, ms: summary(ms) };
		};
		console.log(JSON.stringify({
			engine: engine.search.engine,
			messages: options.messages,
			conversations: options.conversations,
			users: options.users,
			conversationsPerQuery: { mean: round(scopes.reduce((a, b) => a + b, 0) / scopes.length), max: Math.max(...scopes) },
			queries: options.queries,
			limit: options.limit,
			scopeMessages: { mean: Math.round(scopeMessages.reduce((a, b) => a + b, 0) / scopeMessages.length), max: Math.max(...scopeMessages) },
			meanHits: round(hits / options.queries),
			loadSeconds,
			ms: summary(latenciesMs),
			...(options.busyUsers > 0 ? { busyUsers: busy(true), otherUsers: busy(false) } : {}),
			...(paths ? { paths } : {}),
			...(engine.paths ? { pathsDiffer: await comparePaths(engine.paths, timed, options.limit) } : {}),
		}));
	} finally {
		await engine.dispose();
	}
}

main().catch((err: unknown) => {
	console.error(err);
	process.exit(1);
});
