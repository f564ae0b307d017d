import { chatSuite } from "../support/chat-suite";

chatSuite("SQLite + FTS5");
