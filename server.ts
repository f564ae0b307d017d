/**
 * Starts Parley: `npm start` (embedded profile, one process) or `npm run repl`
 * (the same, with the Moleculer REPL for operators).
 */
import { ServiceBroker } from "moleculer";
import { ConfigError, loadConfig } from "./config";
import { brokerOptions } from "./moleculer.config";
import { servicesFor } from "./services";

async function main(): Promise<void> {
	const startedAt = process.hrtime.bigint();
	let config;
	try {
		config = loadConfig();
	} catch (err) {
		if (err instanceof ConfigError) {
			console.error(`parley: configuration error: ${err.message}`);
			process.exit(2);
		}
		throw err;
	}
	const broker = new ServiceBroker(brokerOptions(config));
	// A bug must cost one call, never the process: log it and keep serving everyone else.
	process.on("unhandledRejection", (reason) => broker.logger.error("unhandled rejection (server keeps running):", reason));
	for (const schema of servicesFor(config)) broker.createService(schema);
	await broker.start();
	const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
	const where = config.roles.includes("gateway") ? ` on http://localhost:${config.port}` : "";
	broker.logger.info(`Parley ready${where} (${config.profile}, ${config.mode}, ${config.roles.join("+")}, node ${broker.nodeID}) in ${ms.toFixed(0)} ms`);
	if (process.argv.includes("--repl")) await broker.repl();
}

main().catch((err) => {
	console.error("parley: failed to start:", err);
	process.exit(1);
});
