// Server-Sent Events read from a fetch() body, because EventSource cannot send an Authorization header.

// Split one SSE block ("event: x\ndata: {...}") into its event name and parsed data.
export function parseEventBlock(block) {
  let eventName = "message";
  const dataLines = [];
  block.split("\n").forEach((line) => {
    if (line.startsWith(":")) {
      return; // a comment (keep-alive)
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    if (field === "event") {
      eventName = value;
    } else if (field === "data") {
      dataLines.push(value);
    }
  });
  if (dataLines.length === 0) {
    return null;
  }
  const text = dataLines.join("\n");
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    data = { text };
  }
  return { event: eventName, data };
}

// Call onEvent(name, data) for every event until the stream ends; aborting the request rejects with AbortError.
export async function readEventStream(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      break;
    }
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let boundary = buffer.indexOf("\n\n");
    while (boundary !== -1) {
      const parsed = parseEventBlock(buffer.slice(0, boundary));
      buffer = buffer.slice(boundary + 2);
      if (parsed) {
        onEvent(parsed.event, parsed.data);
      }
      boundary = buffer.indexOf("\n\n");
    }
  }
  const last = parseEventBlock(buffer.trim());
  if (last) {
    onEvent(last.event, last.data);
  }
}
