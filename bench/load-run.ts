/**
 * One load run: a fresh server, the load generator in its own process, and
 * what the orchestrator sees of the server meanwhile (RSS, CPU over the
 * measured window, anything it logs at warn or above, whether it survived).
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT, hasExited, spawnNodeScript, stopChild } from "./children";
import { mainThreadProfile, summarizeProfile, type ProfileSummary } from "./cpu-profile";
import type { LoadJob, LoadResult, LoadScenario, LoadgenMessage } from "./job";
import type { BenchOptions } from "./options";
import { RssSampler, cpuSecondsOf, machineJiffies } from "./proc-stats";
import { startTarget, type TargetName } from "./targets";

export interface ServerObservations {
	rssPeakMB: number;
	/** One second after the load stopped. */
	rssAfterMB: number;
	/** Server CPU over the measured window, percent of one core. */
	cpuPct: number | null;
	/** All cores over the measured window, percent of the machine (server + generator + the rest). */
	machineBusyPct: number | null;
	/** Lines it printed after it was up (at warn level, everything printed is worth a look). */
	logLines: number;
	logSample: string[];
	/** Set if the server was gone before the bench stopped it. */
	died: string | null;
}

export interface LoadRun {
	target: TargetName;
	scenario: LoadScenario;
	/** throughput: in-flight sends per lane. */
	window: number;
	/** latency: offered msg/s. */
	rate: number;
	result: LoadResult | null;
	error: string | null;
	server: ServerObservations | null;
	profile?: ProfileSummary;
}

const SETUP_BUDGET_S = 60;

export async function runLoad(name: TargetName, scenario: LoadScenario, options: BenchOptions, window: number): Promise<LoadRun> {
	const profileDir = options.cpuProf && name === "parley" && scenario === "throughput" ? path.join(ROOT, ".bench", "profiles", String(Date.now())) : undefined;
	if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
	const target = await startTarget(name, { profile: options.profile, logLevel: "warn", relaySummaries: options.relaySummaries, cpuProfileDir: profileDir });
	const outputAtStart = target.output().length;
	const rss = new RssSampler(target.pids);
	const job: LoadJob = {
		url: target.url,
		urls: target.urls,
		scenario,
		users: options.users,
		conversations: options.conversations,
		durationS: options.durationS,
		warmupS: options.warmupS,
		drainS: options.drainS,
		window,
		rate: options.rate,
		receipts: options.receipts,
		sourceAddresses: options.sourceAddresses,
	};
	const run: LoadRun = { target: name, scenario, window, rate: options.rate, result: null, error: null, server: null };
	let cpuPct: number | null = null;
	let machineBusyPct: number | null = null;
	try {
		const outcome = await driveLoadgen(job, target.pids, (pct, busy) => {
			cpuPct = pct;
			machineBusyPct = busy;
		});
		run.result = outcome.result;
		run.error = outcome.error;
		await sleep(1000);
		rss.sample();
	} finally {
		rss.stop();
		const died = hasExited(target.child) ? `exited with ${target.child.exitCode ?? target.child.signalCode}` : null;
		await target.stop();
		const lines = target.output().slice(outputAtStart).split("\n").filter((l) => l.trim() !== "");
		run.server = {
			rssPeakMB: round(rss.peakMB),
			rssAfterMB: round(rss.lastMB),
			cpuPct,
			machineBusyPct,
			logLines: lines.length,
			logSample: lines.slice(0, 10).map((l) => l.slice(0, 300)),
			died,
		};
	}
	if (profileDir) {
		const file = mainThreadProfile(profileDir);
		if (file) run.profile = summarizeProfile(file);
	}
	return run;
}

/** Runs bench/loadgen.ts and waits for its result, measuring the server's CPU between its window signals. */
function driveLoadgen(
	job: LoadJob,
	serverPids: () => number[],
	onWindowClosed: (serverCpuPct: number | null, machineBusyPct: number | null) => void,
): Promise<{ result: LoadResult | null; error: string | null }> {
	const child: ChildProcess = spawnNodeScript({ script: "bench/loadgen.ts", args: [JSON.stringify(job)], stdio: ["ignore", "inherit", "inherit", "ipc"] });
	const budgetMs = (SETUP_BUDGET_S + job.warmupS + job.durationS + job.drainS + 45) * 1000;
	return new Promise((resolve) => {
		let settled = false;
		let opened: { at: number; cpu: number | undefined; machine: { busy: number; total: number } } | undefined;
		const finish = (result: LoadResult | null, error: string | null) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			void stopChild(child, 2000).then(() => resolve({ result, error }));
		};
		const timer = setTimeout(() => finish(null, `load generator gave no result within ${budgetMs / 1000} s`), budgetMs);
		child.on("message", (message: LoadgenMessage) => {
			if (message.kind === "phase" && message.phase === "window-open") {
				opened = { at: performance.now(), cpu: cpuSecondsOf(serverPids()), machine: machineJiffies() };
			} else if (message.kind === "phase" && message.phase === "window-closed" && opened) {
				const seconds = (performance.now() - opened.at) / 1000;
				const cpu = cpuSecondsOf(serverPids());
				const machine = machineJiffies();
				onWindowClosed(
					cpu === undefined || opened.cpu === undefined ? null : round(((cpu - opened.cpu) / seconds) * 100),
					round(((machine.busy - opened.machine.busy) / (machine.total - opened.machine.total)) * 100),
				);
			} else if (message.kind === "result") finish(message.result, null);
			else if (message.kind === "error") finish(null, message.message);
		});
		child.once("close", (code, signal) => finish(null, `load generator exited (${code ?? signal}) without a result`));
	});
}

const round = (n: number) => Math.round(n * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
