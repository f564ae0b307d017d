/**
 * The chat contract suite on a real cluster: two gateway nodes and two core nodes
 * over NATS, Redis, Cassandra and Elasticsearch. The suite puts the two sides of
 * each conversation (and a user's two devices) on different gateways.
 */
import { describe, it } from "node:test";
import { startCluster } from "../../scripts/cluster-launcher";
import { chatSuite } from "../support/chat-suite";
import { enginesMissing } from "../support/engines";
import type { ServerHandle } from "../support/server";

/** The cluster as the suite sees a server: every gateway URL, and the first gateway's process. */
async function startClusterTarget(env: Record<string, string>): Promise<ServerHandle> {
	const cluster = await startCluster({ gateways: 2, cores: 2, env, echo: Boolean(process.env.DEBUG_CLUSTER) });
	const first = cluster.gateways[0]!;
	return {
		url: first.url,
		urls: cluster.gateways.map((g) => g.url),
		port: first.port,
		dataDir: "",
		process: cluster.processOf(first.nodeID),
		log: () => cluster.gateways.map((g) => cluster.logsOf(g.nodeID).join("\n")).join("\n"),
		stop: () => cluster.stop(),
		restart: () => Promise.reject(new Error("restart a cluster node with the launcher instead")),
	};
}

describe("cluster", async () => {
	const missing = await enginesMissing();
	if (missing) {
		it("needs Cassandra and Elasticsearch", { skip: missing }, () => undefined);
		return;
	}
	chatSuite("cluster: 2 gateways + 2 core nodes", {}, startClusterTarget);
});
