/**
 * PresenceRegistry in Redis for the cluster profile: every gateway node registers
 * its sessions here, and a node that stops heartbeating takes its users offline
 * when its liveness key expires, even before anyone sweeps up after it.
 *
 * Keys (p = keyPrefix):
 *   p node:<nodeID>           liveness, PX nodeTtlMs. "1" once a heartbeat vouched for the node,
 *                             "0" when add/restore brought it up (see heartbeat)
 *   p nodes                   set of node IDs that may own sessions: what sweep walks
 *   p node-sessions:<nodeID>  set of "userId\0sessionId": a dead node is swept without SCAN
 *   p user:<userId>           hash sessionId -> "nodeID\0deviceId"
 *   p seen:<userId>           last seen (ISO), EX lastSeenTtlDays
 *   p sweep-lock:<nodeID>     one sweeper per dead node, deleted when done
 *
 * A session counts only while its node's liveness key exists. Every mutating script
 * drops the user's fields of dead nodes as it reads them: those sessions can only
 * come back by their node's restore, and dropping them keeps each went-offline event
 * single (remove and sweep report a user only when they actually deleted a field and
 * nothing live is left). Scripts derive node keys inside Lua, so this needs a single
 * Redis primary, not Redis Cluster.
 */
import { randomUUID } from "node:crypto";
import type Redis from "ioredis";
import type { PresenceState } from "../../contract";
import { createRedis } from "../redis";
import type { PresenceRegistry, SessionInfo } from "./presence-registry";

export type RedisPresenceOptions = {
	keyPrefix?: string;
	nodeTtlMs?: number;
	lastSeenTtlDays?: number;
} & ({ url: string } | { redis: Redis }); // a shared connection is neither opened nor closed here

// Shared by all scripts. ARGV[1] is always the key prefix.
const LIB = `
local P = ARGV[1]
local liveCache = {}
local function live(node)
	local v = liveCache[node]
	if v == nil then
		v = redis.call("EXISTS", P .. "node:" .. node) == 1
		liveCache[node] = v
	end
	return v
end
local function nodeOf(value) return string.match(value, "^(.-)%z") end
-- Whether the user has a session on a live node; with prune, fields of dead nodes are dropped.
local function anyLive(hkey, prune)
	local kv = redis.call("HGETALL", hkey)
	local found = false
	for i = 1, #kv, 2 do
		if live(nodeOf(kv[i + 1])) then
			if not prune then return true end
			found = true
		elseif prune then
			redis.call("HDEL", hkey, kv[i])
		end
	end
	return found
end
-- An add or restore proves the node runs, not that Redis holds all its sessions: "0" until a heartbeat.
local function markUp(node, ttl)
	redis.call("SET", P .. "node:" .. node, "0", "PX", ttl, "NX")
	redis.call("SADD", P .. "nodes", node)
end
`;

// ARGV: prefix, userId, sessionId, nodeID, deviceId, nodeTtlMs -> 1 when the user came online.
const ADD = `${LIB}
local user, sid, node = ARGV[2], ARGV[3], ARGV[4]
local hkey = P .. "user:" .. user
local was = anyLive(hkey, true)
markUp(node, ARGV[6])
redis.call("HSET", hkey, sid, node .. "\\0" .. ARGV[5])
redis.call("SADD", P .. "node-sessions:" .. node, user .. "\\0" .. sid)
return was and 0 or 1
`;

// ARGV: prefix, userId, sessionId, nodeID, nowIso, seenTtlSeconds -> 1 when the user went offline.
const REMOVE = `${LIB}
local user, sid, node = ARGV[2], ARGV[3], ARGV[4]
local hkey = P .. "user:" .. user
redis.call("SREM", P .. "node-sessions:" .. node, user .. "\\0" .. sid)
if redis.call("HDEL", hkey, sid) == 0 or anyLive(hkey, true) then return 0 end
redis.call("SET", P .. "seen:" .. user, ARGV[5], "EX", ARGV[6])
return 1
`;

// ARGV: prefix, userIds... -> per user, a flat list of sessionId, "nodeID\0deviceId" on live nodes.
const SESSIONS = `${LIB}
local out = {}
for i = 2, #ARGV do
	local kv = redis.call("HGETALL", P .. "user:" .. ARGV[i])
	local mine = {}
	for j = 1, #kv, 2 do
		if live(nodeOf(kv[j + 1])) then
			mine[#mine + 1] = kv[j]
			mine[#mine + 1] = kv[j + 1]
		end
	end
	out[#out + 1] = mine
end
return out
`;

// ARGV: prefix, userIds... -> per user "" when online, else last seen ("-" if never).
const STATES = `${LIB}
local out = {}
for i = 2, #ARGV do
	if anyLive(P .. "user:" .. ARGV[i], false) then
		out[#out + 1] = ""
	else
		out[#out + 1] = redis.call("GET", P .. "seen:" .. ARGV[i]) or "-"
	end
end
return out
`;

// ARGV: prefix, nodeID, nodeTtlMs -> 1 when a heartbeat had already vouched for the live node.
const HEARTBEAT = `${LIB}
local key = P .. "node:" .. ARGV[2]
local before = redis.call("GET", key)
redis.call("SET", key, "1", "PX", ARGV[3])
redis.call("SADD", P .. "nodes", ARGV[2])
return before == "1" and 1 or 0
`;

// ARGV: prefix, nodeID, nodeTtlMs, then userId, sessionId, deviceId per session -> users that came online.
const RESTORE = `${LIB}
local node = ARGV[2]
markUp(node, ARGV[3])
local came, seen = {}, {}
for i = 4, #ARGV, 3 do
	local user, sid = ARGV[i], ARGV[i + 1]
	local hkey = P .. "user:" .. user
	if not seen[user] then
		seen[user] = true
		if not anyLive(hkey, true) then came[#came + 1] = user end
	end
	redis.call("HSET", hkey, sid, node .. "\\0" .. ARGV[i + 2])
	redis.call("SADD", P .. "node-sessions:" .. node, user .. "\\0" .. sid)
end
return came
`;

// ARGV: prefix -> IDs of known nodes whose liveness key is gone.
const DEAD_NODES = `${LIB}
local dead = {}
for _, node in ipairs(redis.call("SMEMBERS", P .. "nodes")) do
	if not live(node) then dead[#dead + 1] = node end
end
return dead
`;

// ARGV: prefix, nodeID, lockToken, batchSize, nowIso, seenTtlSeconds -> {done, users that went offline...}.
// In batches so a node with 100k sessions never blocks Redis for long; SPOP hands each session to one batch.
const SWEEP_BATCH = `${LIB}
local node, token = ARGV[2], ARGV[3]
local lock = P .. "sweep-lock:" .. node
-- The node came back: its heartbeat said known:false and it restores; leave the rest to it.
if live(node) then
	if redis.call("GET", lock) == token then redis.call("DEL", lock) end
	return {1}
end
local set = P .. "node-sessions:" .. node
local members = redis.call("SPOP", set, ARGV[4])
local out = {0}
for _, m in ipairs(members) do
	local user, sid = string.match(m, "^(.*)%z(.-)$")
	local hkey = P .. "user:" .. user
	if redis.call("HDEL", hkey, sid) == 1 and not anyLive(hkey, true) then
		redis.call("SET", P .. "seen:" .. user, ARGV[5], "EX", ARGV[6])
		out[#out + 1] = user
	end
end
if #members < tonumber(ARGV[4]) then
	redis.call("DEL", set)
	redis.call("SREM", P .. "nodes", node)
	if redis.call("GET", lock) == token then redis.call("DEL", lock) end
	out[1] = 1
end
return out
`;

type Arg = string | number;
interface Scripts {
	parleyPresenceAdd(...args: Arg[]): Promise<number>;
	parleyPresenceRemove(...args: Arg[]): Promise<number>;
	parleyPresenceSessions(...args: Arg[]): Promise<string[][]>;
	parleyPresenceStates(...args: Arg[]): Promise<string[]>;
	parleyPresenceHeartbeat(...args: Arg[]): Promise<number>;
	parleyPresenceRestore(...args: Arg[]): Promise<string[]>;
	parleyPresenceDeadNodes(...args: Arg[]): Promise<string[]>;
	parleyPresenceSweepBatch(...args: Arg[]): Promise<(number | string)[]>;
}

const SCRIPTS: Record<keyof Scripts, string> = {
	parleyPresenceAdd: ADD,
	parleyPresenceRemove: REMOVE,
	parleyPresenceSessions: SESSIONS,
	parleyPresenceStates: STATES,
	parleyPresenceHeartbeat: HEARTBEAT,
	parleyPresenceRestore: RESTORE,
	parleyPresenceDeadNodes: DEAD_NODES,
	parleyPresenceSweepBatch: SWEEP_BATCH,
};

/** Users per sessionsOf/states script and sessions per restore script: short scripts, few round trips. */
const CHUNK = 500;
const SWEEP_LOCK_MS = 10_000;

export class RedisPresence implements PresenceRegistry {
	/** The connection, for sharing (e.g. with RedisTokenBuckets). */
	readonly redis: Redis;
	private readonly scripts: Scripts;
	private readonly ownsConnection: boolean;
	private readonly prefix: string;
	private readonly nodeTtlMs: number;
	private readonly seenTtlSeconds: number;

	constructor(options: RedisPresenceOptions) {
		this.ownsConnection = "url" in options;
		this.redis = "url" in options ? createRedis(options.url) : options.redis;
		this.prefix = options.keyPrefix ?? "parley:";
		this.nodeTtlMs = options.nodeTtlMs ?? 15_000;
		this.seenTtlSeconds = Math.round((options.lastSeenTtlDays ?? 30) * 86_400);
		// Keys are built inside the scripts (node liveness of every session), so they are all passed as ARGV.
		for (const [name, lua] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { numberOfKeys: 0, lua });
		this.scripts = this.redis as unknown as Scripts;
	}

	/** Fails when Redis cannot be reached, so a misconfigured node does not start. */
	async open(): Promise<void> {
		await this.redis.ping();
	}

	async close(): Promise<void> {
		if (this.ownsConnection && this.redis.status !== "end") await this.redis.quit().catch(() => this.redis.disconnect());
	}

	async add(s: SessionInfo): Promise<{ cameOnline: boolean }> {
		const came = await this.scripts.parleyPresenceAdd(this.prefix, s.userId, s.sessionId, s.nodeID, s.deviceId, this.nodeTtlMs);
		return { cameOnline: came === 1 };
	}

	async remove(s: SessionInfo): Promise<{ wentOffline: boolean; lastSeenAt: string }> {
		const lastSeenAt = new Date().toISOString();
		const went = await this.scripts.parleyPresenceRemove(this.prefix, s.userId, s.sessionId, s.nodeID, lastSeenAt, this.seenTtlSeconds);
		return { wentOffline: went === 1, lastSeenAt };
	}

	async sessionsOf(userIds: string[]): Promise<SessionInfo[]> {
		const perUser = await this.perChunk(userIds, (ids) => this.scripts.parleyPresenceSessions(this.prefix, ...ids));
		const out: SessionInfo[] = [];
		perUser.forEach((flat, i) => {
			for (let j = 0; j < flat.length; j += 2) {
				const value = flat[j + 1]!;
				const cut = value.indexOf("\0");
				out.push({ userId: userIds[i]!, sessionId: flat[j]!, nodeID: value.slice(0, cut), deviceId: value.slice(cut + 1) });
			}
		});
		return out;
	}

	async states(userIds: string[]): Promise<PresenceState[]> {
		const seen = await this.perChunk(userIds, (ids) => this.scripts.parleyPresenceStates(this.prefix, ...ids));
		// Someone online is seen now: lastSeenAt only means something while offline.
		return userIds.map((userId, i) => {
			const s = seen[i]!;
			return { userId, online: s === "", lastSeenAt: s === "" || s === "-" ? null : s };
		});
	}

	/**
	 * `known: false` also when add/restore (not a heartbeat) brought the node key up: the node
	 * may have been declared dead in between and lost sessions to a sweep, so it restores them all.
	 */
	async heartbeat(nodeID: string): Promise<{ known: boolean }> {
		return { known: (await this.scripts.parleyPresenceHeartbeat(this.prefix, nodeID, this.nodeTtlMs)) === 1 };
	}

	async restore(nodeID: string, sessions: SessionInfo[]): Promise<{ cameOnline: string[] }> {
		const chunks: Promise<string[]>[] = [];
		for (let i = 0; i < sessions.length; i += CHUNK) {
			const args = sessions.slice(i, i + CHUNK).flatMap((s) => [s.userId, s.sessionId, s.deviceId]);
			// Sent back to back on one connection, so they run in order: a user spread over chunks comes online once.
			chunks.push(this.scripts.parleyPresenceRestore(this.prefix, nodeID, this.nodeTtlMs, ...args));
		}
		return { cameOnline: (await Promise.all(chunks)).flat() };
	}

	async sweep(): Promise<{ userId: string; lastSeenAt: string }[]> {
		const offline: { userId: string; lastSeenAt: string }[] = [];
		for (const node of await this.scripts.parleyPresenceDeadNodes(this.prefix)) offline.push(...(await this.sweepNode(node)));
		return offline;
	}

	/**
	 * A node starting under the id of one that died (a supervisor restarting it within the TTL)
	 * must not inherit that process's sessions: its heartbeat would keep them alive for ever.
	 * So at start a node declares its own id dead and sweeps it before taking sockets.
	 */
	async forgetNode(nodeID: string): Promise<{ userId: string; lastSeenAt: string }[]> {
		await this.redis.del(`${this.prefix}node:${nodeID}`);
		return this.sweepNode(nodeID);
	}

	/** The sessions Redis holds for a node (what its gateway compares with the sockets it really has). */
	async sessionsOfNode(nodeID: string): Promise<SessionInfo[]> {
		const members = await this.redis.smembers(`${this.prefix}node-sessions:${nodeID}`);
		return members.map((m) => {
			const cut = m.indexOf("\0");
			return { userId: m.slice(0, cut), sessionId: m.slice(cut + 1), nodeID, deviceId: "" };
		});
	}

	private async sweepNode(node: string): Promise<{ userId: string; lastSeenAt: string }[]> {
		const offline: { userId: string; lastSeenAt: string }[] = [];
		const token = randomUUID();
		const locked = await this.redis.set(`${this.prefix}sweep-lock:${node}`, token, "PX", SWEEP_LOCK_MS, "NX");
		if (locked !== "OK") return offline; // another node sweeps it
		const lastSeenAt = new Date().toISOString();
		for (let done = false; !done; ) {
			const [finished, ...users] = await this.scripts.parleyPresenceSweepBatch(this.prefix, node, token, CHUNK, lastSeenAt, this.seenTtlSeconds);
			done = finished === 1;
			for (const userId of users) offline.push({ userId: String(userId), lastSeenAt });
		}
		return offline;
	}

	private async perChunk<T>(userIds: string[], run: (ids: string[]) => Promise<T[]>): Promise<T[]> {
		if (userIds.length === 0) return [];
		if (userIds.length <= CHUNK) return run(userIds);
		const chunks: Promise<T[]>[] = [];
		for (let i = 0; i < userIds.length; i += CHUNK) chunks.push(run(userIds.slice(i, i + CHUNK)));
		return (await Promise.all(chunks)).flat();
	}
}
