/**
 * The load generator, run as its own process by bench/run.ts so its CPU is
 * not the orchestrator's (or the server's). It gets a LoadJob as argv[2],
 * sends phase signals and finally one LoadResult over the IPC channel.
 * Usage outside the orchestrator: node --import tsx bench/loadgen.ts '<job json>'
 */
import type { LoadJob, LoadResult, LoadgenMessage } from "./job";
import { buildFleet, type Fleet } from "./load/fleet";
import { runFixedRate } from "./load/latency";
import { DeliveredMarker } from "./load/receipts";
import { Recipients } from "./load/recipients";
import { runThroughput } from "./load/throughput";
import { MessageTracker, summarize } from "./load/tracker";
import { planWindow } from "./load/window";

const SETUP_BUDGET_S = 60;

function report(message: LoadgenMessage): Promise<void> {
	if (!process.send) {
		if (message.kind !== "phase") console.log(JSON.stringify(message));
		return Promise.resolve();
	}
	return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

async function main(job: LoadJob): Promise<LoadResult> {
	const setupStarted = performance.now();
	const fleet: Fleet = await buildFleet(job);
	const setupMs = performance.now() - setupStarted;
	try {
		const tracker = new MessageTracker();
		const marker = job.receipts ? new DeliveredMarker() : undefined;
		const recipients = new Recipients(tracker, marker);
		fleet.sockets.forEach((s) => recipients.attach(s));
		await report({ kind: "phase", phase: "setup-done" });

		const window = planWindow(job, tracker, (phase) => void report({ kind: "phase", phase }));
		let maxSendLagMs = 0;
		if (job.scenario === "throughput") await runThroughput(job, fleet.lanes, tracker, window);
		else maxSendLagMs = await runFixedRate(job, fleet.lanes, tracker, window);
		await window.closed;
		await drain(tracker, job.drainS);

		const seconds = tracker.windowMs / 1000;
		const perSecond = (n: number) => Math.round(n / seconds);
		return {
			scenario: job.scenario,
			setupMs: Math.round(setupMs),
			lanes: fleet.lanes.length,
			measuredS: seconds,
			window: { ...tracker.inWindow },
			perSecond: {
				sent: perSecond(tracker.inWindow.sent),
				acked: perSecond(tracker.inWindow.acked),
				delivered: perSecond(tracker.inWindow.delivered),
			},
			totals: { ...tracker.totals },
			errors: tracker.errors,
			missing: tracker.missing(),
			unacked: tracker.unacked(),
			duplicates: tracker.duplicates,
			outOfOrder: recipients.outOfOrder,
			disconnects: recipients.disconnects,
			delivery: summarize(tracker.deliveryUs),
			ack: summarize(tracker.ackUs),
			maxSendLagMs: Math.round(maxSendLagMs * 10) / 10,
			otherEvents: recipients.otherEvents,
			receiptsMarked: marker?.marked ?? 0,
			receiptsRefused: marker?.failed ?? 0,
			loadgenCpuPct: Math.round((window.cpuMicros() / 1000 / tracker.windowMs) * 1000) / 10,
		};
	} finally {
		fleet.close();
	}
}

/** Waits for in-flight acks and deliveries, but not forever: what is still missing after drainS is reported. */
async function drain(tracker: MessageTracker, drainS: number): Promise<void> {
	const deadline = performance.now() + drainS * 1000;
	while (performance.now() < deadline && !tracker.settled()) await new Promise((r) => setTimeout(r, 50));
}

const job = JSON.parse(process.argv[2] ?? "null") as LoadJob | null;
if (!job) {
	console.error("usage: node --import tsx bench/loadgen.ts '<LoadJob json>'");
	process.exit(2);
}
// If the orchestrator dies, so do we: never leave a generator hammering a server.
process.on("disconnect", () => process.exit(3));
const hardStop = setTimeout(
	() => {
		void report({ kind: "error", message: "load generator hit its hard time limit" }).finally(() => process.exit(4));
	},
	(SETUP_BUDGET_S + job.warmupS + job.durationS + job.drainS + 30) * 1000,
);
hardStop.unref();

main(job).then(
	async (result) => {
		await report({ kind: "result", result });
		process.exit(0);
	},
	async (err: Error) => {
		await report({ kind: "error", message: err.stack ?? err.message });
		process.exit(1);
	},
);
