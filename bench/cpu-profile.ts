/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went:
 * self time per function and per package (node_modules/<pkg>, node's own
 * internals, this repo's folders, GC).
 */
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./children";

interface CallFrame {
	functionName: string;
	url: string;
	lineNumber: number;
}

interface ProfileNode {
	id: number;
	callFrame: CallFrame;
	hitCount?: number;
}

interface CpuProfile {
	nodes: ProfileNode[];
	startTime: number;
	endTime: number;
	samples?: number[];
	timeDeltas?: number[];
}

export interface TimeShare {
	name: string;
	selfMs: number;
	/** Percent of the non-idle time. */
	pct: number;
}

export interface ProfileSummary {
	file: string;
	busyMs: number;
	idleMs: number;
	functions: TimeShare[];
	packages: TimeShare[];
}

/**
 * The main thread's profile in `dir`: node writes one per thread (tsx's loader
 * hooks run in a worker), and the main thread's is by far the largest.
 * Undefined if the process wrote none (e.g. it was SIGKILLed).
 */
export function mainThreadProfile(dir: string): string | undefined {
	if (!fs.existsSync(dir)) return undefined;
	const files = fs
		.readdirSync(dir)
		.filter((f) => f.endsWith(".cpuprofile"))
		.map((f) => path.join(dir, f))
		.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
	return files[0];
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
	const profile = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
	const selfUs = selfTimes(profile);
	const byFunction = new Map<string, number>();
	const byPackage = new Map<string, number>();
	let idleUs = 0;
	for (const node of profile.nodes) {
		const us = selfUs.get(node.id) ?? 0;
		if (us === 0) continue;
		if (node.callFrame.functionName === "(idle)") {
			idleUs += us;
			continue;
		}
		const fn = `${node.callFrame.functionName || "(anonymous)"} ${where(node.callFrame)}`.trim();
		byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
		const pkg = packageOf(node.callFrame);
		byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
	}
	const busyUs = [...byPackage.values()].reduce((a, b) => a + b, 0);
	const rank = (m: Map<string, number>): TimeShare[] =>
		[...m]
			.sort((a, b) => b[1] - a[1])
			.slice(0, top)
			.map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), pct: Math.round((us / busyUs) * 1000) / 10 }));
	return { file, busyMs: Math.round(busyUs / 1000), idleMs: Math.round(idleUs / 1000), functions: rank(byFunction), packages: rank(byPackage) };
}

/** Each sample's interval charged to the node it landed in; hitCount as a fallback. */
function selfTimes(profile: CpuProfile): Map<number, number> {
	const self = new Map<number, number>();
	if (profile.samples && profile.timeDeltas && profile.samples.length === profile.timeDeltas.length) {
		for (let i = 0; i < profile.samples.length; i++) {
			// timeDeltas[i] is the gap before sample i; the gap after it is the better estimate of its cost.
			const us = profile.timeDeltas[i + 1] ?? 0;
			self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + Math.max(0, us));
		}
		return self;
	}
	const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
	const perHit = (profile.endTime - profile.startTime) / hits;
	for (const n of profile.nodes) self.set(n.id, (n.hitCount ?? 0) * perHit);
	return self;
}

function where(frame: CallFrame): string {
	if (!frame.url) return "";
	const file = frame.url.startsWith("file://") ? path.relative(ROOT, new URL(frame.url).pathname) : frame.url;
	// TypeScript runs as tsx's transpiled output, whose line numbers do not match the source: name the file only.
	return file.endsWith(".ts") ? file : `${file}:${frame.lineNumber + 1}`;
}

function packageOf(frame: CallFrame): string {
	if (!frame.url) return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
	if (frame.url.startsWith("node:")) return "node internals";
	const url = frame.url.startsWith("file://") ? new URL(frame.url).pathname : frame.url;
	const modules = url.lastIndexOf("node_modules/");
	if (modules >= 0) {
		const parts = url.slice(modules + "node_modules/".length).split("/");
		return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
	}
	const relative = path.relative(ROOT, url);
	if (relative.startsWith("..")) return url;
	const [first, second] = relative.split(path.sep);
	return second ? `parley ${first}/` : `parley ${first}`;
}
