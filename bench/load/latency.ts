/**
 * T2, open loop: message i is due at start + i/rate, round-robin over the
 * lanes, whatever the server does. If the generator falls behind (a slow tick,
 * a GC pause) it sends everything due at once but keeps each message's
 * intended time, so the stall counts against latency instead of silently
 * thinning the load (no coordinated omission).
 */
import type { LoadJob } from "../job";
import type { Lane } from "./fleet";
import type { MessageTracker } from "./tracker";
import { sendMessage } from "./sender";
import type { RunWindow } from "./window";

/** Returns how far behind schedule the generator ever got, in ms. */
export function runFixedRate(job: LoadJob, lanes: Lane[], tracker: MessageTracker, window: RunWindow): Promise<number> {
	const intervalMs = 1000 / job.rate;
	const firstAt = window.start - job.warmupS * 1000;
	const total = Math.round(job.rate * ((window.end - firstAt) / 1000));
	let next = 0;
	let maxLag = 0;
	return new Promise((resolve) => {
		const tick = () => {
			const now = performance.now();
			for (; next < total; next++) {
				const intendedAt = firstAt + next * intervalMs;
				if (intendedAt > now) break;
				maxLag = Math.max(maxLag, now - intendedAt);
				sendMessage(lanes[next % lanes.length]!, tracker, intendedAt);
			}
			// A 1 ms timer rather than a busy loop: the server needs the other core.
			if (next < total) setTimeout(tick, 1);
			else resolve(maxLag);
		};
		tick();
	});
}
