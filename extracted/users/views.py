"""HTTP face of the users app: parse input, call a service or selector, shape the output."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from service_kit.auth import BearerTokenAuthentication, bearer_token
from service_kit.login_throttle import client_address
from service_kit.parsers import BoundedJSONParser

from . import selectors, services
from .serializers import (
    LoginSerializer,
    NoBodySerializer,
    TokenSerializer,
    UserErrorSerializer,
    UserListQuerySerializer,
    UserRegisterSerializer,
    UserSerializer,
    UserUpdateSerializer,
)

_BAD_INPUT = OpenApiResponse(UserErrorSerializer, description="A field is missing or invalid.")
_ANONYMOUS = OpenApiResponse(UserErrorSerializer, description="No token, or a bad or revoked one.")
_NOT_STAFF = OpenApiResponse(UserErrorSerializer, description="Only staff may list users.")
_THROTTLED = OpenApiResponse(
    UserErrorSerializer,
    description="Too many failed logins for the account, or attempts from the address; "
    "`Retry-After` says how many seconds to wait.",
)


class UsersAPIView(GenericAPIView):
    """Base of the users views: JSON bodies, bounded in size and depth."""

    parser_classes = [BoundedJSONParser]


class UsersView(UsersAPIView):
    """`/api/users/`: anyone registers (POST); staff list and search (GET)."""

    def get_permissions(self):
        # OPTIONS describes the registration form, so it is as open as POST.
        if self.request.method in ("POST", "OPTIONS"):
            return [permissions.AllowAny()]
        return [permissions.IsAdminUser()]

    def get_serializer_class(self):
        return UserRegisterSerializer if self.request.method == "POST" else UserSerializer

    @extend_schema(
        operation_id="users_list",
        parameters=[UserListQuerySerializer],
        responses={200: UserSerializer(many=True), 401: _ANONYMOUS, 403: _NOT_STAFF},
    )
    def get(self, request):
        """List users by id, paginated; staff only."""
        query = UserListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        users = selectors.user_list(search=query.validated_data["search"])
        page = self.paginate_queryset(users)
        return self.get_paginated_response(UserSerializer(page, many=True).data)

    @extend_schema(
        operation_id="users_register",
        request=UserRegisterSerializer,
        responses={201: UserSerializer, 400: _BAD_INPUT},
    )
    def post(self, request):
        """Register a new account."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class MeView(UsersAPIView):
    """`/api/users/me/`: the caller's own profile."""

    serializer_class = UserSerializer

    @extend_schema(
        operation_id="users_me_retrieve", responses={200: UserSerializer, 401: _ANONYMOUS}
    )
    def get(self, request):
        """Show the caller's profile."""
        return Response(UserSerializer(request.user).data)

    @extend_schema(
        operation_id="users_me_update",
        request=UserUpdateSerializer,
        responses={200: UserSerializer, 400: _BAD_INPUT, 401: _ANONYMOUS},
    )
    def patch(self, request):
        """Change the caller's email, full name or password (the latter with current_password)."""
        serializer = UserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(user=request.user, **serializer.validated_data)
        return Response(UserSerializer(user).data)


class TokenLoginView(UsersAPIView):
    """`/api/auth/token/`: trade email and password for an API token."""

    # Credentials are in the body: a stale Authorization header must not block a fresh login.
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    serializer_class = LoginSerializer

    def get_authenticate_header(self, request):
        # Same challenge as every other endpoint, though this one reads no header itself.
        return BearerTokenAuthentication().authenticate_header(request)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # RFC 9110: a 401 says how to authenticate. DomainErrors bypass DRF's header logic.
        if response is not None and response.status_code == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = self.get_authenticate_header(self.request)
        return response

    @extend_schema(
        operation_id="auth_token_create",
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            400: _BAD_INPUT,
            401: OpenApiResponse(UserErrorSerializer, description="Wrong credentials or inactive."),
            429: _THROTTLED,
        },
    )
    def post(self, request):
        """Log in: return a new token for this device, valid for 7 days by default."""
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = services.user_login(
            **serializer.validated_data, client_address=client_address(request.META)
        )
        return Response(TokenSerializer({"token": token}).data)


class LogoutView(UsersAPIView):
    """`/api/auth/logout/`: revoke the token the request was made with."""

    serializer_class = NoBodySerializer

    @extend_schema(
        operation_id="auth_logout",
        request=None,
        responses={204: OpenApiResponse(description="The token is revoked."), 401: _ANONYMOUS},
    )
    def post(self, request):
        """Log out: the token in use stops working at once; other devices' tokens stay."""
        services.user_logout(user=request.user, token=bearer_token(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
