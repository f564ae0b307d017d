/** The same contract and durability suites as the embedded profile, on Cassandra + Elasticsearch. */
import { describe, it } from "node:test";
import { chatSuite } from "../support/chat-suite";
import { durabilitySuite } from "../support/durability-suite";
import { engineEnv, enginesMissing } from "../support/engines";

describe("engines", async () => {
	const missing = await enginesMissing();
	if (missing) {
		it("needs Cassandra and Elasticsearch", { skip: missing }, () => undefined);
		return;
	}
	chatSuite("Cassandra + Elasticsearch", engineEnv());
	durabilitySuite("Cassandra + Elasticsearch", engineEnv());
});
