// Logs in over REST, connects to /chat/<id> with socket.io-client@4, sends a message and prints the
// streamed answer as JSON: what any browser or mobile client does.
import { io } from "socket.io-client";

const [base, username, password, transport] = process.argv.slice(2);

async function rest(method, path, body, token) {
  const response = await fetch(base + path, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json() };
}

const login = await rest("POST", "/api/v1/users/login", { username, password });
if (login.status !== 200) throw new Error(`login failed: ${JSON.stringify(login.body)}`);
const token = login.body.access_token;
const session = await rest("POST", "/api/v1/chat/sessions", { title: "from node" }, token);

const socket = io(`${base}/chat/${session.body.id}`, {
  auth: { token },
  transports: transport === "polling" ? ["polling", "websocket"] : ["websocket"],
  reconnection: false,
});
const tokens = [];
const done = new Promise((resolve, reject) => {
  socket.on("connect_error", (err) => reject(new Error(`connect_error ${JSON.stringify(err.data)}`)));
  socket.on("assistant_token", (t) => tokens.push(t));
  socket.on("assistant_response", resolve);
  setTimeout(() => reject(new Error("no answer within 20 s")), 20000).unref();
});
await new Promise((resolve) => socket.on("connect", resolve));
const ack = await socket.timeout(10000).emitWithAck("user_message", { content: "hello from node", client_id: "node-1" });
const response = await done;
const refusal = await socket.timeout(10000).emitWithAck("user_message", { content: 5 });
socket.disconnect();
console.log(JSON.stringify({ ack, tokens, response, refusal, transport: socket.io.engine?.transport?.name }));
