"""Egress policy through the SDK (the policy's behaviour is tested in
tests/integration/test_egress_policy.py)."""
import asyncio

import pytest

from warren import AsyncSandbox, Sandbox, WarrenError


def test_policy_and_credentials_round_trip_without_the_secret():
    with Sandbox(network_profile="locked-down", allow=["api.openai.com"], sandbox_timeout=-1,
                 credentials={"OPENAI_API_KEY": "sk-sdk-test-secret"}) as sb:
        assert sb.info.allow == ["api.openai.com"]
        assert sb.info.credentials == {"OPENAI_API_KEY": {"hosts": ["api.openai.com"]}}
        assert "sk-sdk-test-secret" not in repr(sb.info.raw)
        assert sb.exec("echo $OPENAI_API_KEY").stdout.startswith("warren-placeholder-")
        info = sb.set_network(deny=["203.0.113.0/24"])
        assert info.deny == ["203.0.113.0/24"] and info.allow == ["api.openai.com"]
        assert sb.refresh().deny == ["203.0.113.0/24"]
        with pytest.raises(WarrenError) as ei:
            sb.set_network(allow=["not a name"])
        assert ei.value.code == 400


def test_set_network_async():
    async def go():
        async with AsyncSandbox(sandbox_timeout=-1) as sb:
            info = await sb.set_network(network_profile="internet", deny=["*.example.com"])
            assert info.network_profile == "internet" and info.deny == ["*.example.com"]
    asyncio.run(go())
