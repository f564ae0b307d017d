/**
 * `npm run migrate`: brings the Cassandra keyspace named by the configuration
 * (PARLEY_CASSANDRA_*) to this build's schema version, then exits. Run it once
 * before starting or upgrading a cluster's core nodes, so no two nodes ever run
 * DDL at once; a node that finds the keyspace at its version runs none.
 */
import { ConfigError, loadConfig } from "../config";
import { ensureSchema } from "../lib/store/cassandra-schema";
import { createCassandraClient } from "../lib/store/cassandra-store";
import { DEFAULTS } from "../lib/store/cassandra-io";

async function main(): Promise<void> {
	const config = loadConfig();
	const c = config.store.cassandra;
	const client = createCassandraClient({ ...DEFAULTS, contactPoints: c.contactPoints, localDataCenter: c.localDataCenter });
	try {
		await client.connect();
		const { from, to } = await ensureSchema(client, c.keyspace, c.replication, `migrate-${process.pid}`);
		console.log(from === to ? `keyspace ${c.keyspace} is at schema version ${to}: nothing to do` : `keyspace ${c.keyspace}: schema version ${from ?? "none"} -> ${to}`);
	} finally {
		await client.shutdown();
	}
}

main().catch((err) => {
	console.error(`parley migrate: ${err instanceof ConfigError ? "configuration error: " : ""}${(err as Error).message}`);
	process.exit(1);
});
