/**
 * Broker options for each profile. The embedded profile has no transporter:
 * every service runs in this process and broker calls stay in memory.
 */
import type { BrokerOptions } from "moleculer";
import type { Config } from "./config";
import { drainGatewayFirst } from "./middlewares/drain.middleware";
import { paramsAlwaysObject } from "./middlewares/params.middleware";

export function brokerOptions(config: Config): BrokerOptions {
	return {
		namespace: "parley",
		nodeID: config.nodeID,
		transporter: null,
		logger: { type: "Console", options: { level: config.logLevel, formatter: "short", colors: process.stdout.isTTY } },
		cacher: "Memory",
		// Validation of every action's params (fastest-validator).
		validator: true,
		requestTimeout: 10_000,
		// The gateway waits for the services it fronts; poll often so start-up stays fast.
		dependencyInterval: 20,
		metrics: config.metricsPort
			? { enabled: true, reporter: [{ type: "Prometheus", options: { port: config.metricsPort, path: "/metrics" } }] }
			: { enabled: false },
		tracing: { enabled: false },
		middlewares: [paramsAlwaysObject, drainGatewayFirst],
		// Stop waits for calls in flight, so a drain finishes the writes it has started.
		tracking: { enabled: true, shutdownTimeout: 5000 },
	};
}
