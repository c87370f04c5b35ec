"""Second factors: TOTP, recovery codes, passkeys, and what a login or a step-up does
with them.

- :mod:`.methods`: the registry of second-factor methods: which ones a user has, what a
  client needs to answer each (``mfa_required``), and how a proof is verified.
- :mod:`.tickets`: the login ticket between the password and the second factor.
- :mod:`.totp`, :mod:`.recovery_codes`: the two code factors; :mod:`.encryption`
  keeps TOTP secrets encrypted at rest.
- :mod:`.webauthn`: passkeys (py_webauthn): registration, the challenges, every check of
  an assertion; :mod:`.passwordless`: logging in with a passkey alone.
- :mod:`.factors`: what adding or removing any factor changes (recovery codes, sessions
  waiting for enrolment, signals).
- :mod:`.policy`: who MFA_REQUIRED covers. :mod:`.stepup`: recent authentication and
  ``reauthenticate/``.
"""
