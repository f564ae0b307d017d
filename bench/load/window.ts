/**
 * The measured window of a run: warm-up first, then `durationS` seconds that
 * count. Both are fixed when the run starts, so the tracker knows up front
 * which messages are inside; the orchestrator is told when the window opens
 * and closes so it can sample the server's CPU over the same interval.
 */
import type { LoadJob } from "../job";
import type { MessageTracker } from "./tracker";

export interface RunWindow {
	start: number;
	end: number;
	/** The generator's own CPU time (µs) spent inside the window, once it has closed. */
	cpuMicros: () => number;
	closed: Promise<void>;
}

export function planWindow(job: LoadJob, tracker: MessageTracker, signal: (phase: "window-open" | "window-closed") => void): RunWindow {
	const start = performance.now() + job.warmupS * 1000;
	const end = start + job.durationS * 1000;
	tracker.openWindow(start);
	tracker.closeWindow(end);
	let cpuAtOpen: NodeJS.CpuUsage | undefined;
	let cpuSpent = 0;
	setTimeout(() => {
		cpuAtOpen = process.cpuUsage();
		signal("window-open");
	}, start - performance.now());
	const closed = new Promise<void>((resolve) => {
		setTimeout(() => {
			const used = process.cpuUsage(cpuAtOpen);
			cpuSpent = used.user + used.system;
			signal("window-closed");
			resolve();
		}, end - performance.now());
	});
	return { start, end, cpuMicros: () => cpuSpent, closed };
}
