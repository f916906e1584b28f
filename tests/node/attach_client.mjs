// Sends an image as a binary `user_message` (a Socket.IO binary event) with socket.io-client@4, as a
// browser or mobile client would, and prints the ack, the second socket's `message_created` and the answer.
import { readFile } from "node:fs/promises";
import { io } from "socket.io-client";

const [base, token, sessionId, transport, imagePath] = process.argv.slice(2);
const options = {
  auth: { token },
  transports: transport === "polling" ? ["polling"] : ["websocket"],
  reconnection: false,
};

function open() {
  const socket = io(`${base}/chat/${sessionId}`, options);
  return new Promise((resolve, reject) => {
    socket.on("connect", () => resolve(socket));
    socket.on("connect_error", (err) => reject(new Error(`connect_error ${JSON.stringify(err.data)}`)));
  });
}

const sender = await open();
const watcher = await open();
const created = new Promise((resolve) => watcher.on("message_created", resolve));
const answered = new Promise((resolve, reject) => {
  watcher.on("assistant_response", resolve);
  setTimeout(() => reject(new Error("no answer within 40 s")), 40000).unref();
});
const image = await readFile(imagePath);
const ack = await sender.timeout(30000).emitWithAck("user_message", {
  content: "What is the access code in this screenshot?",
  client_id: "node-attach-1",
  file: image,
  filename: "shot.png",
  mime_type: "image/png",
});
const event = await created;
const response = await answered;
sender.disconnect();
watcher.disconnect();
console.log(JSON.stringify({ ack, created: event, response }));
