// Reads a JSON array of objects on stdin; writes a JSON array of ajv error lists
// (empty for a valid object) on stdout. Used by tests/deploy/test_render_k8s.py.
import { validate } from "./gateway-api-httproute.bundle.mjs";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map((doc) => (validate(doc) ? [] : validate.errors));
process.stdout.write(JSON.stringify(results));
