"""A small MCP server living in the test process: a real implementation of the SDK's
public ``MCPServer`` interface, so agents get MCP tools without a subprocess."""

from __future__ import annotations

from typing import Any

from agents.mcp import MCPServer
from mcp.types import (
    CallToolResult,
    GetPromptResult,
    ListPromptsResult,
    TextContent,
    Tool,
)


class InProcessMCPServer(MCPServer):
    def __init__(self, tool_names: list[str]) -> None:
        super().__init__()
        self._tools = [
            Tool(
                name=name,
                description=f"{name} tool",
                inputSchema={"type": "object", "properties": {}},
            )
            for name in tool_names
        ]
        self.calls: list[str] = []

    async def connect(self) -> None:
        return None

    @property
    def name(self) -> str:
        return "in-process"

    async def cleanup(self) -> None:
        return None

    async def list_tools(self, run_context: Any = None, agent: Any = None) -> list[Tool]:
        return list(self._tools)

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        self.calls.append(tool_name)
        return CallToolResult(content=[TextContent(type="text", text=f"{tool_name} done")])

    async def list_prompts(self) -> ListPromptsResult:
        return ListPromptsResult(prompts=[])

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> GetPromptResult:
        raise KeyError(name)
