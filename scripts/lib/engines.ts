/**
 * The external engines a cluster needs, Cassandra and Elasticsearch: where they
 * are, whether they answer, and dropping a cluster's keyspace and index after it.
 * They are started by scripts/engines.sh, never from here.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { ROOT, portOpen } from "./processes";

export interface EngineEnv {
	PARLEY_CASSANDRA_CONTACT_POINTS: string;
	PARLEY_CASSANDRA_LOCAL_DC: string;
	PARLEY_ELASTICSEARCH_URL: string;
}

export const START_ENGINES_HINT = "start them first with `npm run engines -- start all`";

/** The engines' addresses: this process's environment wins over what `engines.sh env` prints. */
export function engineEnv(): EngineEnv {
	const printed = scriptEnv();
	const pick = (name: keyof EngineEnv, fallback: string) => process.env[name] || printed[name] || fallback;
	return {
		PARLEY_CASSANDRA_CONTACT_POINTS: pick("PARLEY_CASSANDRA_CONTACT_POINTS", "127.0.0.1:9042"),
		PARLEY_CASSANDRA_LOCAL_DC: pick("PARLEY_CASSANDRA_LOCAL_DC", "datacenter1"),
		PARLEY_ELASTICSEARCH_URL: pick("PARLEY_ELASTICSEARCH_URL", "http://127.0.0.1:9200"),
	};
}

/** Parses the `export NAME=value` lines of `scripts/engines.sh env` (the one place that knows the defaults). */
function scriptEnv(): Record<string, string> {
	try {
		const out = execFileSync("bash", [path.join(ROOT, "scripts/engines.sh"), "env"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
		return Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.trim()]));
	} catch {
		return {};
	}
}

/** Throws, naming what is missing and how to start it, unless both engines answer. */
export async function assertEnginesUp(env: EngineEnv): Promise<void> {
	const missing: string[] = [];
	if (!(await cassandraUp(env))) missing.push(`Cassandra (${env.PARLEY_CASSANDRA_CONTACT_POINTS})`);
	if (!(await elasticsearchUp(env))) missing.push(`Elasticsearch (${env.PARLEY_ELASTICSEARCH_URL})`);
	if (missing.length > 0) throw new Error(`${missing.join(" and ")} not reachable: a cluster needs both; ${START_ENGINES_HINT}`);
}

async function cassandraUp(env: EngineEnv): Promise<boolean> {
	const first = env.PARLEY_CASSANDRA_CONTACT_POINTS.split(",")[0]!.trim();
	const [host, port] = first.split(":");
	return portOpen(host || "127.0.0.1", Number(port || 9042), 2000);
}

/** GET / answers 405 on the test zip (no rest-root module), so ask the cluster health. */
async function elasticsearchUp(env: EngineEnv): Promise<boolean> {
	try {
		return (await fetch(`${env.PARLEY_ELASTICSEARCH_URL}/_cluster/health`, { signal: AbortSignal.timeout(3000) })).ok;
	} catch {
		return false;
	}
}

/** Drops a keyspace and an index that only one cluster used, so runs do not pile up in the engines. */
export async function dropStorage(env: EngineEnv, keyspace: string, index: string): Promise<void> {
	const res = await fetch(`${env.PARLEY_ELASTICSEARCH_URL}/${encodeURIComponent(index)}`, { method: "DELETE", signal: AbortSignal.timeout(15_000) });
	if (!res.ok && res.status !== 404) throw new Error(`deleting index ${index}: HTTP ${res.status}`);
	const { Client } = await import("cassandra-driver");
	const client = new Client({
		contactPoints: env.PARLEY_CASSANDRA_CONTACT_POINTS.split(",").map((s) => s.trim()),
		localDataCenter: env.PARLEY_CASSANDRA_LOCAL_DC,
		socketOptions: { readTimeout: 30_000 },
	});
	try {
		await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
	} finally {
		await client.shutdown();
	}
}
