"""Attacks on the stack, each test named after the attack it performs and sees refused."""
