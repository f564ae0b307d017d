/** Command-line flags of `npm run bench` (see BENCHMARKS.md). */
import type { Profile } from "./targets";

export type Scenario = "startup" | "throughput" | "latency";

export interface BenchOptions {
	scenarios: Scenario[];
	profile: Profile;
	baseline: boolean;
	durationS: number;
	warmupS: number;
	drainS: number;
	users: number;
	conversations: number;
	rate: number;
	/** throughput: in-flight sends per lane; one run per value (the best is the saturating rate). */
	windows: number[];
	receipts: boolean;
	relaySummaries: boolean;
	sourceAddresses: number;
	startupRuns: number;
	cpuProf: boolean;
}

export const USAGE = `usage: npm run bench -- [flags]
  --scenario all|startup|throughput|latency   (default all; may be comma-separated)
  --profile embedded|cluster-engines|cluster  server under test: SQLite + FTS5; Cassandra + Elasticsearch in one
                                              process; or a local cluster of 2 gateways + 2 core nodes over NATS
                                              and Redis (started by the bench) on Cassandra + Elasticsearch
                                              (start the engines first: npm run engines -- start all). The
                                              cluster profile has no startup scenario (T8 is about one process)
  --baseline                                  also run the load against a bare Socket.IO relay
  --duration <s>        measured seconds per load run (default 10)
  --warmup <s>          unmeasured load before each measured period (default 2)
  --drain <s>           max wait for in-flight acks/deliveries after the load (default 5)
  --users <N>           sockets, one user each (default 200)
  --conversations <M>   buyer/seller conversations; both members send (default 100)
  --rate <R>            latency scenario: fixed arrival rate, msg/s (default 4000)
  --window <K,...>      throughput scenario: in-flight sends per lane, one run per value;
                        T1 compares each server's best (default 1,8)
  --receipts            recipients also mark "delivered" (coalesced per conversation)
  --relay-summaries     the relay also emits conversation.updated per message, as Parley does
  --source-addresses <n>  spread sockets over 127.0.0.1..n (default 1)
  --startup-runs <n>    start-up measurements to take (default 3)
  --cpu-prof            V8 CPU profile of the Parley server during throughput; prints top functions
                        (the profiler costs throughput: those figures are not comparable)`;

const SCENARIOS: readonly Scenario[] = ["startup", "throughput", "latency"];
const PROFILES: readonly Profile[] = ["embedded", "cluster-engines", "cluster"];

export function parseOptions(argv: string[]): BenchOptions {
	const options: BenchOptions = {
		scenarios: [...SCENARIOS],
		profile: "embedded",
		baseline: false,
		durationS: 10,
		warmupS: 2,
		drainS: 5,
		users: 200,
		conversations: 100,
		rate: 4000,
		windows: [1, 8],
		receipts: false,
		relaySummaries: false,
		sourceAddresses: 1,
		startupRuns: 3,
		cpuProf: false,
	};
	const args = argv.flatMap((a) => (a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a]));
	const value = (flag: string): string => {
		const v = args.shift();
		if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
		return v;
	};
	const number = (flag: string, min: number, max: number, integer = true): number => {
		const raw = value(flag);
		const n = Number(raw);
		if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
			throw new UsageError(`${flag} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, got "${raw}"`);
		}
		return n;
	};
	while (args.length > 0) {
		const flag = args.shift()!;
		switch (flag) {
			case "--scenario": {
				const v = value(flag);
				const picked = v === "all" ? [...SCENARIOS] : v.split(",");
				for (const s of picked) if (!SCENARIOS.includes(s as Scenario)) throw new UsageError(`unknown scenario "${s}"`);
				options.scenarios = SCENARIOS.filter((s) => picked.includes(s));
				break;
			}
			case "--profile": {
				const v = value(flag);
				if (!PROFILES.includes(v as Profile)) throw new UsageError(`unknown profile "${v}" (available: ${PROFILES.join(", ")})`);
				options.profile = v as Profile;
				break;
			}
			case "--baseline": options.baseline = true; break;
			case "--receipts": options.receipts = true; break;
			case "--relay-summaries": options.relaySummaries = true; break;
			case "--cpu-prof": options.cpuProf = true; break;
			case "--duration": options.durationS = number(flag, 1, 600, false); break;
			case "--warmup": options.warmupS = number(flag, 0, 60, false); break;
			case "--drain": options.drainS = number(flag, 0, 60, false); break;
			case "--users": options.users = number(flag, 2, 100_000); break;
			case "--conversations": options.conversations = number(flag, 1, 100_000); break;
			case "--rate": options.rate = number(flag, 1, 1_000_000); break;
			case "--window": {
				const v = value(flag);
				options.windows = v.split(",").map((k) => {
					const n = Number(k);
					if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new UsageError(`--window takes integers from 1 to 10000, got "${k}"`);
					return n;
				});
				break;
			}
			case "--source-addresses": options.sourceAddresses = number(flag, 1, 254); break;
			case "--startup-runs": options.startupRuns = number(flag, 1, 20); break;
			case "--help":
			case "-h":
				throw new UsageError("");
			default:
				throw new UsageError(`unknown flag "${flag}"`);
		}
	}
	return options;
}

export class UsageError extends Error {}
