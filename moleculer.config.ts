/**
 * Broker options for each profile. The embedded profile has no transporter:
 * every service runs in this process and broker calls stay in memory. The
 * cluster profile joins the other nodes over NATS and shares its cache in Redis.
 */
import type { BrokerOptions } from "moleculer";
import type { Config } from "./config";
import { durableChannels, inProcessChannels } from "./middlewares/channels.middleware";
import { drainGatewayFirst } from "./middlewares/drain.middleware";
import { ParleyErrorRegenerator } from "./lib/errors";
import { redisOptions } from "./lib/redis";
import { paramsAlwaysObject } from "./middlewares/params.middleware";
import { missingServiceIsTransient } from "./middlewares/unavailable.middleware";

export function brokerOptions(config: Config): BrokerOptions {
	const clustered = config.profile === "cluster";
	return {
		namespace: "parley",
		nodeID: config.nodeID,
		transporter: clustered ? { type: "NATS", options: { url: config.cluster.natsUrl } } : null,
		logger: { type: "Console", options: { level: config.logLevel, formatter: "short", colors: process.stdout.isTTY } },
		// The cache's connection is tuned like every other Redis connection: a Redis outage fails calls within 2 s.
		cacher: clustered ? { type: "Redis", options: { prefix: "parley-cache", redis: redisOptions(config.cluster.redisUrl), ttl: 600 } } : "Memory",
		// A node that stops answering is dropped from the registry within seconds, so calls go elsewhere.
		heartbeatInterval: 2,
		heartbeatTimeout: 6,
		// Validation of every action's params (fastest-validator).
		validator: true,
		requestTimeout: 10_000,
		// Client errors thrown on another node keep their class, so their code and type reach the client.
		errorRegenerator: new ParleyErrorRegenerator(),
		// The gateway waits for the services it fronts; poll often so start-up stays fast.
		dependencyInterval: 20,
		metrics: config.metricsPort
			? { enabled: true, reporter: [{ type: "Prometheus", options: { port: config.metricsPort, path: "/metrics" } }] }
			: { enabled: false },
		tracing: { enabled: false },
		middlewares: [
			paramsAlwaysObject,
			drainGatewayFirst,
			missingServiceIsTransient,
			// Channels carry asynchronous work (push; search indexing in a cluster): durable on NATS JetStream in a cluster.
			clustered ? durableChannels(config.cluster.natsUrl) : inProcessChannels(),
		],
		// Moleculer tells other nodes of our services a second after they register (a debounce);
		// a gateway takes sockets before that, so announce at once when the node is up.
		started: clustered ? (broker) => (broker.registry as unknown as { discoverer: { sendLocalNodeInfo(): Promise<void> } }).discoverer.sendLocalNodeInfo() : undefined,
		// Stop waits for calls in flight, so a drain finishes the writes it has started.
		tracking: { enabled: true, shutdownTimeout: 5000 },
	};
}

