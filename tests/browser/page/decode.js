// Decodes notification bodies with the SDK's own TrouterUtils (MIT TypeScript source shipped in the
// @azure/communication-signaling package): reads [[eventName, body], ...] as JSON on stdin, prints the events.
import { toMessageHandler } from "../node_modules/@azure/communication-signaling/src/TrouterUtils.ts";

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([name, body]) => {
    let event = null;
    const handler = toMessageHandler(name, (e) => { event = e; }, "https://threadline.test/", "2025-03-15");
    const result = handler.handleMessage({ rawBody: body });
    return { handled: result ? result.resultCode : null, event: JSON.parse(JSON.stringify(event)) };
  });
  process.stdout.write(JSON.stringify(out));
});
