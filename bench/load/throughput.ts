/**
 * T1, closed loop: every lane keeps `window` sends in flight and sends the
 * next one as soon as one is answered, so the server sets the pace. What
 * counts is delivery: message.new reaching the other member inside the window.
 */
import type { LoadJob } from "../job";
import type { Lane } from "./fleet";
import type { MessageTracker } from "./tracker";
import { sendMessage } from "./sender";
import type { RunWindow } from "./window";

export async function runThroughput(job: LoadJob, lanes: Lane[], tracker: MessageTracker, window: RunWindow): Promise<void> {
	let running = true;
	const keepFull = (lane: Lane, inFlight: { n: number }) => {
		while (running && inFlight.n < job.window) {
			inFlight.n++;
			// Closed loop: there is no schedule, so the intended time is the actual send time.
			sendMessage(lane, tracker, performance.now(), () => {
				inFlight.n--;
				keepFull(lane, inFlight);
			});
		}
	};
	for (const lane of lanes) keepFull(lane, { n: 0 });
	await window.closed;
	running = false;
}
