/**
 * `npm run cluster`: a whole Parley cluster on this machine, for trying it out and for
 * watching it fail over. Starts Cassandra and Elasticsearch through scripts/engines.sh
 * if they are not up (keeping their data), then nats-server (JetStream) and redis-server
 * on free ports, two core nodes and two gateway nodes. Every node's log is printed with
 * its node id. Ctrl-C stops the nodes, NATS and Redis; engines started here are stopped too.
 *
 *   npm run cluster                     gateways on PORT and PORT+1 (default 3000, 3001)
 *   npm run cluster -- --gateways 3 --cores 2
 *
 * The keyspace and index (`parley_local`, `parley-local`) are kept, so a second run
 * finds the conversations of the first.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { startCluster } from "./cluster-launcher";
import { assertEnginesUp, engineEnv } from "./lib/engines";
import { ROOT, killAllChildren } from "./lib/processes";

interface Args {
	gateways: number;
	cores: number;
	port: number;
}

function parseArgs(argv: string[]): Args {
	const args: Args = { gateways: 2, cores: 2, port: Number(process.env.PORT ?? 3000) };
	for (let i = 0; i < argv.length; i++) {
		const flag = argv[i];
		const n = Number(argv[++i]);
		if (!Number.isInteger(n) || n < 1 || n > 16) throw new Error(`${flag} needs a count from 1 to 16`);
		if (flag === "--gateways") args.gateways = n;
		else if (flag === "--cores") args.cores = n;
		else throw new Error(`unknown flag ${flag} (use --gateways N, --cores N; PORT sets the first gateway's port)`);
	}
	if (!Number.isInteger(args.port) || args.port < 1 || args.port + args.gateways > 65536) throw new Error(`PORT must be a port number, got ${process.env.PORT}`);
	return args;
}

const engines = (command: string, extraEnv: Record<string, string> = {}) =>
	execFileSync("bash", [path.join(ROOT, "scripts/engines.sh"), command, "all"], { stdio: "inherit", env: { ...process.env, ...extraEnv } });

async function main(): Promise<void> {
	const args = parseArgs(process.argv.slice(2));
	let startedEngines = false;
	try {
		await assertEnginesUp(engineEnv());
	} catch {
		console.log("cluster: starting Cassandra and Elasticsearch (the first time downloads them; later starts take about a minute)");
		engines("start", { KEEP_DATA: "1" });
		startedEngines = true;
	}
	const cluster = await startCluster({
		gateways: args.gateways,
		cores: args.cores,
		gatewayPorts: Array.from({ length: args.gateways }, (_, i) => args.port + i),
		echo: true,
		keepStorage: true,
		keyspace: "parley_local",
		index: "parley-local",
	});
	console.log(`\ncluster: up. NATS ${cluster.natsUrl}, Redis ${cluster.redisUrl}`);
	for (const g of cluster.gateways) console.log(`cluster: gateway ${g.nodeID} on ${g.url}`);
	console.log("cluster: try `PARLEY_URL=" + cluster.gateways[0]!.url + " npm run demo`; Ctrl-C stops it\n");

	let stopping = false;
	const stop = async () => {
		if (stopping) return;
		stopping = true;
		console.log("\ncluster: stopping");
		await cluster.stop();
		if (startedEngines) engines("stop");
		process.exit(0);
	};
	process.on("SIGINT", () => void stop());
	process.on("SIGTERM", () => void stop());
}

main().catch((err: Error) => {
	console.error(`cluster: ${err.message}`);
	killAllChildren();
	process.exit(1);
});
