"""Test doubles of what lies outside seizewatch: real servers, never mocks."""
