/**
 * T8: how long `node --import tsx server.ts` takes from spawn until it
 * answers /api/health and prints "Parley ready", and how much memory it holds
 * once idle. Each run uses a fresh data directory, as a first `npm start` would.
 */
import { rssMB } from "./proc-stats";
import { startTarget, type Profile } from "./targets";

/** The brief asks for idle RSS this long after ready. */
const IDLE_AFTER_MS = 2000;
const READY_LINE_WAIT_MS = 10_000;

export interface StartupRun {
	healthMs: number;
	readyLineMs: number | null;
	/** The server's own figure from its ready line ("... in N ms"): process start to broker started. */
	selfReportedMs: number | null;
	idleRssMB: number | null;
}

export interface StartupResult {
	runs: StartupRun[];
	median: StartupRun;
}

export async function measureStartup(profile: Profile, runs: number): Promise<StartupResult> {
	const results: StartupRun[] = [];
	for (let i = 0; i < runs; i++) {
		const target = await startTarget("parley", { profile, logLevel: "info", relaySummaries: false });
		try {
			const waitUntil = performance.now() + READY_LINE_WAIT_MS;
			while (target.readyLineMs() === undefined && performance.now() < waitUntil) await sleep(5);
			await sleep(IDLE_AFTER_MS);
			const selfReported = /in (\d+) ms/.exec(target.readyLine() ?? "")?.[1];
			results.push({
				healthMs: round(target.healthMs),
				readyLineMs: target.readyLineMs() === undefined ? null : round(target.readyLineMs()!),
				selfReportedMs: selfReported === undefined ? null : Number(selfReported),
				idleRssMB: round(rssMB(target.pids()[0] ?? -1) ?? NaN) || null,
			});
		} finally {
			await target.stop();
		}
	}
	return { runs: results, median: medianRun(results) };
}

function medianRun(runs: StartupRun[]): StartupRun {
	const median = (pick: (r: StartupRun) => number | null): number | null => {
		const values = runs.map(pick).filter((v): v is number => v !== null).sort((a, b) => a - b);
		return values.length === 0 ? null : values[Math.floor((values.length - 1) / 2)]!;
	};
	return {
		healthMs: median((r) => r.healthMs) ?? NaN,
		readyLineMs: median((r) => r.readyLineMs),
		selfReportedMs: median((r) => r.selfReportedMs),
		idleRssMB: median((r) => r.idleRssMB),
	};
}

const round = (n: number) => Math.round(n * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
