// The peer: a minimal Node socket.io@4 server doing what bench/echo_server.py does (ack {ok, message},
// message_created to the namespace's other sockets), on loopback. `node server.js PORT`
"use strict";
const http = require("http");
const crypto = require("crypto");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 8200);
const server = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end('{"status":"ready"}');
    return;
  }
  res.writeHead(404);
  res.end();
});
const io = new Server(server, { transports: ["websocket", "polling"] });
let seq = 0;
io.of(/^\/.*$/).on("connection", (socket) => {
  socket.on("user_message", (data, ack) => {
    seq += 1;
    const message = {
      id: crypto.randomUUID(),
      seq,
      content: (data && data.content) || "",
      client_id: (data && data.client_id) || null,
      created_at: Date.now() / 1000,
    };
    socket.broadcast.emit("message_created", { message });
    if (typeof ack === "function") ack({ ok: true, message });
  });
});
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => {
  io.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
