/**
 * Bookkeeping for every message the generator sends, by a dense numeric id
 * (gid) that also forms its clientMsgId. Flat typed arrays rather than objects
 * per message: a run sends a few hundred thousand messages and the generator
 * shares two cores with the server, so its own overhead must stay small.
 */
import { build, type Histogram } from "hdr-histogram-js";
import type { LatencySummary } from "../job";

const ACKED = 1;
const DELIVERED = 2;
const REFUSED = 4;

/** Latencies are recorded in microseconds; a minute is far beyond anything a sane run sees. */
const newHistogram = (): Histogram =>
	build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

export class MessageTracker {
	private intended = new Float64Array(1 << 16);
	private flags = new Uint8Array(1 << 16);
	private count = 0;
	private windowStart = Infinity;
	private windowEnd = Infinity;

	readonly inWindow = { sent: 0, acked: 0, delivered: 0 };
	readonly totals = { sent: 0, acked: 0, delivered: 0 };
	readonly errors: Record<string, number> = {};
	readonly deliveryUs = newHistogram();
	readonly ackUs = newHistogram();
	duplicates = 0;

	openWindow(now: number): void {
		this.windowStart = now;
	}

	closeWindow(now: number): void {
		this.windowEnd = now;
	}

	get windowMs(): number {
		return this.windowEnd - this.windowStart;
	}

	private within(t: number): boolean {
		return t >= this.windowStart && t < this.windowEnd;
	}

	/** A new message the caller is about to send; `intendedAt` is when the schedule wanted it sent. */
	register(intendedAt: number, now: number): number {
		if (this.count === this.intended.length) this.grow();
		const gid = this.count++;
		this.intended[gid] = intendedAt;
		this.totals.sent++;
		if (this.within(now)) this.inWindow.sent++;
		return gid;
	}

	acked(gid: number, now: number): void {
		if (gid >= this.count || this.flags[gid] & (ACKED | REFUSED)) return;
		this.flags[gid] |= ACKED;
		this.totals.acked++;
		if (this.within(now)) this.inWindow.acked++;
		const intended = this.intended[gid];
		if (this.within(intended)) this.ackUs.recordValue(toMicros(now - intended));
	}

	refused(gid: number, type: string): void {
		if (gid >= this.count) return;
		this.flags[gid] |= REFUSED;
		this.errors[type] = (this.errors[type] ?? 0) + 1;
	}

	/** `sentAt` comes from the message text, as a recipient on another machine would read it. */
	delivered(gid: number, sentAt: number, now: number): void {
		if (!(gid >= 0 && gid < this.count)) {
			this.errors.UNKNOWN_DELIVERY = (this.errors.UNKNOWN_DELIVERY ?? 0) + 1;
			return;
		}
		if (this.flags[gid] & DELIVERED) {
			this.duplicates++;
			return;
		}
		this.flags[gid] |= DELIVERED;
		this.totals.delivered++;
		if (this.within(now)) this.inWindow.delivered++;
		if (this.within(sentAt)) this.deliveryUs.recordValue(toMicros(now - sentAt));
	}

	/** True once every acked message was delivered and every sent one answered. */
	settled(): boolean {
		return this.missing() === 0 && this.unacked() === 0;
	}

	missing(): number {
		let n = 0;
		for (let i = 0; i < this.count; i++) if ((this.flags[i] & (ACKED | DELIVERED)) === ACKED) n++;
		return n;
	}

	unacked(): number {
		let n = 0;
		for (let i = 0; i < this.count; i++) if ((this.flags[i] & (ACKED | REFUSED)) === 0) n++;
		return n;
	}

	private grow(): void {
		const intended = new Float64Array(this.intended.length * 2);
		intended.set(this.intended);
		const flags = new Uint8Array(this.flags.length * 2);
		flags.set(this.flags);
		this.intended = intended;
		this.flags = flags;
	}
}

const toMicros = (ms: number): number => Math.max(1, Math.round(ms * 1000));

export function summarize(h: Histogram): LatencySummary {
	const ms = (us: number) => Math.round(us) / 1000;
	if (h.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
	return {
		count: h.totalCount,
		mean: ms(h.mean),
		p50: ms(h.getValueAtPercentile(50)),
		p90: ms(h.getValueAtPercentile(90)),
		p99: ms(h.getValueAtPercentile(99)),
		p999: ms(h.getValueAtPercentile(99.9)),
		max: ms(h.maxValue),
	};
}
