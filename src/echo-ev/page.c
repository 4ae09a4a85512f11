/*
 * page.c - a self-contained page that opens ws://<same host>/ and shows
 * every echo: type a message, press Send (or Enter), watch it come back.
 */
#include "page.h"

const char page_html[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>echo-ev</title>\n"
    "<style>\n"
    "body{font:16px/1.4 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}\n"
    "#status{color:#666}#log{font-family:monospace;padding-left:1.2em}\n"
    "input{width:70%;font:inherit}button{font:inherit}\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>echo-ev</h1>\n"
    "<p id=\"status\">connecting&hellip;</p>\n"
    "<form id=\"form\"><input id=\"msg\" autocomplete=\"off\" placeholder=\"Type a message\">\n"
    "<button id=\"send\" type=\"submit\">Send</button></form>\n"
    "<ul id=\"log\"></ul>\n"
    "<script>\n"
    "const status = document.getElementById('status');\n"
    "const log = document.getElementById('log');\n"
    "const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';\n"
    "const ws = new WebSocket(scheme + location.host + '/');\n"
    "ws.onopen = () => { status.textContent = 'connected to ' + ws.url; };\n"
    "ws.onclose = (e) => { status.textContent = 'closed (' + e.code + ')'; };\n"
    "ws.onerror = () => { status.textContent = 'connection error'; };\n"
    "ws.onmessage = (e) => {\n"
    "  const li = document.createElement('li');\n"
    "  li.textContent = e.data;\n"
    "  log.appendChild(li);\n"
    "};\n"
    "document.getElementById('form').onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  const input = document.getElementById('msg');\n"
    "  if (ws.readyState === WebSocket.OPEN && input.value !== '') ws.send(input.value);\n"
    "  input.value = '';\n"
    "};\n"
    "</script>\n"
    "</body>\n"
    "</html>\n";

const size_t page_html_len = sizeof(page_html) - 1;
