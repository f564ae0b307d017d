/**
 * Token buckets per key (a user): `callsPerSecond` refill, `burst` capacity.
 * In memory for one process; refill and take happen in one step, so there is
 * no window in which a counter exists without its expiry.
 */
interface Bucket {
	tokens: number;
	at: number;
}

export class TokenBuckets {
	private readonly buckets = new Map<string, Bucket>();

	constructor(
		private readonly perSecond: number,
		private readonly burst: number,
	) {}

	/** 0 when the call may go ahead, else how many ms until a token is free. */
	take(key: string, now = Date.now()): number {
		let bucket = this.buckets.get(key);
		if (!bucket) {
			if (this.buckets.size > 100_000) this.sweep(now);
			this.buckets.set(key, (bucket = { tokens: this.burst, at: now }));
		}
		bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
		bucket.at = now;
		if (bucket.tokens >= 1) {
			bucket.tokens -= 1;
			return 0;
		}
		return Math.ceil(((1 - bucket.tokens) / this.perSecond) * 1000);
	}

	/** Full buckets carry no information: drop them. */
	private sweep(now: number): void {
		for (const [key, b] of this.buckets) {
			if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(key);
		}
	}
}
