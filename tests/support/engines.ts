/**
 * Engine tests need Cassandra and Elasticsearch (`bash scripts/engines.sh start all`).
 * In CI (CI=true) an engine that is not up fails the run; elsewhere its tests are
 * skipped with a loud message.
 */
import { execFileSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { randomBytes } from "node:crypto";

export const cassandraContactPoint = process.env.PARLEY_CASSANDRA_CONTACT_POINTS ?? "127.0.0.1:9042";
export const elasticsearchUrl = process.env.PARLEY_ELASTICSEARCH_URL ?? "http://127.0.0.1:9200";

async function cassandraUp(): Promise<boolean> {
	const [host, port] = cassandraContactPoint.split(":");
	return new Promise((resolve) => {
		const socket = net.connect(Number(port ?? 9042), host ?? "127.0.0.1");
		socket.once("connect", () => (socket.destroy(), resolve(true)));
		socket.once("error", () => resolve(false));
	});
}

async function elasticsearchUp(): Promise<boolean> {
	try {
		return (await fetch(`${elasticsearchUrl}/_cluster/health`)).ok;
	} catch {
		return false;
	}
}

/** undefined when the engines are up; otherwise the reason to skip (outside CI) — in CI it throws. */
export async function enginesMissing(): Promise<string | undefined> {
	const missing = [!(await cassandraUp()) && `Cassandra at ${cassandraContactPoint}`, !(await elasticsearchUp()) && `Elasticsearch at ${elasticsearchUrl}`].filter(Boolean);
	if (missing.length === 0) return undefined;
	const reason = `${missing.join(" and ")} not reachable: run \`bash scripts/engines.sh start all\``;
	if (process.env.CI === "true") throw new Error(`engine tests cannot run in CI: ${reason}`);
	console.warn(`\n!!! SKIPPING ENGINE TESTS: ${reason} !!!\n`);
	return reason;
}

/** Server environment for the Cassandra + Elasticsearch engines, in a keyspace and index of its own. */
export function engineEnv(): Record<string, string> {
	const run = randomBytes(4).toString("hex");
	return {
		PARLEY_STORE: "cassandra",
		PARLEY_SEARCH: "elasticsearch",
		PARLEY_CASSANDRA_CONTACT_POINTS: cassandraContactPoint,
		PARLEY_CASSANDRA_KEYSPACE: `parley_test_${run}`,
		PARLEY_ELASTICSEARCH_URL: elasticsearchUrl,
		PARLEY_ELASTICSEARCH_INDEX: `parley-test-${run}`,
	};
}

export function engineScript(...args: string[]): void {
	execFileSync("bash", [path.resolve(__dirname, "../../scripts/engines.sh"), ...args], { stdio: "inherit", env: { ...process.env, KEEP_DATA: "1" } });
}
