"""An AI agent's side of MCP, with the official Python SDK (PyPI `mcp`),
unmodified: initialise, list the tools, search, fetch, and list
resources, against `confsync serve`'s /mcp (Streamable HTTP) or `confsync
mcp` (stdio).

    mcp_agent.py http URL HEADERS_JSON QUERY [FETCH_ID|first]
    mcp_agent.py stdio CONFSYNC_BINARY DATA_DIR QUERY [FETCH_ID|first]

Prints one JSON line: the server's name, the tools' names, the search's
results (id, title, space), the fetched document (or the error it got),
and the first page of resources. Exits 0 whenever the protocol worked,
whatever the answers: the Rust test that runs it judges them.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


async def walk(session: ClientSession, query: str, fetch_id: str | None) -> dict:
    init = await session.initialize()
    tools = await session.list_tools()
    found = await session.call_tool("search", {"query": query, "k": 50})
    results = [] if found.is_error else json.loads(found.content[0].text)["results"]
    spaces = await session.call_tool("list_spaces", {})
    summary = {
        "server": init.server_info.name,
        "tools": sorted(t.name for t in tools.tools),
        "search_error": found.is_error,
        "results": [{"id": r["id"], "title": r["title"], "space": r["space"]} for r in results],
        "spaces": sorted(s["key"] for s in json.loads(spaces.content[0].text)["spaces"]),
    }
    if fetch_id == "first" and results:
        fetch_id = str(results[0]["id"])
    if fetch_id is not None and fetch_id != "first":
        try:
            fetched = await session.call_tool("fetch", {"id": int(fetch_id)})
            summary["fetch"] = {"error": fetched.is_error, "text": fetched.content[0].text if fetched.content else ""}
        except Exception as error:  # the server answered with a protocol error
            summary["fetch"] = {"error": True, "text": str(error)}
    resources = await session.list_resources()
    summary["resources"] = [str(r.uri) for r in resources.resources]
    if resources.resources:
        read = await session.read_resource(resources.resources[0].uri)
        summary["resource_text"] = read.contents[0].text[:200]
    return summary


async def main() -> None:
    mode = sys.argv[1]
    if mode == "http":
        url, headers, query = sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
        fetch_id = sys.argv[5] if len(sys.argv) > 5 else None
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    summary = await walk(session, query, fetch_id)
    else:
        binary, data_dir, query = sys.argv[2], sys.argv[3], sys.argv[4]
        fetch_id = sys.argv[5] if len(sys.argv) > 5 else None
        server = StdioServerParameters(command=binary, args=["mcp", "--data-dir", data_dir], env={"RUST_LOG": "warn"})
        async with stdio_client(server) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                summary = await walk(session, query, fetch_id)
    print(json.dumps(summary))


asyncio.run(main())
