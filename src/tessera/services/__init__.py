"""The service layer: every rule about sessions, tokens and accounts lives here once.

Views parse input and shape output; they call these functions and nothing else
changes state.
"""
