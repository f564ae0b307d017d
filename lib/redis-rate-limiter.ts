/**
 * Token buckets in Redis, shared by every node of the cluster profile: the same
 * semantics as `TokenBuckets` (lib/rate-limiter.ts). Refill, take and expiry
 * happen in one Lua script on Redis's own clock, so nodes with skewed clocks
 * agree and no key ever exists without its expiry.
 */
import type Redis from "ioredis";

// KEYS[1] bucket; ARGV perSecond, burst. The bucket is "tokens at-ms", gone once it would be full again.
const TAKE = `
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens, at = burst, now
local saved = redis.call("GET", KEYS[1])
if saved then
	local s, a = string.match(saved, "^(%S+) (%S+)$")
	tokens, at = tonumber(s) or burst, tonumber(a) or now
end
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
local full = math.ceil((burst - tokens) / rate * 1000) + 1000
redis.call("SET", KEYS[1], string.format("%.6f %d", tokens, now), "PX", full)
return wait
`;

type WithTake = Redis & { parleyTakeToken(key: string, perSecond: number, burst: number): Promise<number> };

export class RedisTokenBuckets {
	private readonly redis: WithTake;
	private lastReport = 0;

	constructor(
		redis: Redis,
		private readonly perSecond: number,
		private readonly burst: number,
		private readonly keyPrefix = "parley:rl:",
		/** Told (at most every 10 s) when Redis is unreachable and calls are let through. */
		private readonly onError: (err: Error) => void = () => undefined,
	) {
		redis.defineCommand("parleyTakeToken", { numberOfKeys: 1, lua: TAKE });
		this.redis = redis as WithTake;
	}

	/** 0 when the call may go ahead, else how many ms until a token is free. */
	async take(key: string): Promise<number> {
		// Fail open, and at once: a chat that cannot count is better than a chat that waits for Redis.
		if (this.redis.status !== "ready") return this.failOpen(new Error(`Redis is ${this.redis.status}`));
		try {
			return await this.redis.parleyTakeToken(this.keyPrefix + key, this.perSecond, this.burst);
		} catch (err) {
			return this.failOpen(err as Error);
		}
	}

	private failOpen(err: Error): number {
		const now = Date.now();
		if (now - this.lastReport >= 10_000) {
			this.lastReport = now;
			this.onError(err);
		}
		return 0;
	}
}
