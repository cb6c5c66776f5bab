"""The orders API: parse input, call a service or selector, shape the output. Nothing else."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from service_kit.parsers import BoundedJSONParser

from . import selectors, services
from .serializers import (
    OrderCreateInputSerializer,
    OrderErrorSerializer,
    OrderListFilterSerializer,
    OrderOutputSerializer,
    OrderTransitionErrorSerializer,
    ProductSerializer,
)

ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ERRORS = {
    401: OpenApiResponse(OrderErrorSerializer, description="No or a bad bearer token."),
    404: OpenApiResponse(OrderErrorSerializer, description="No such order, or not yours."),
}
TRANSITION_ERROR = OpenApiResponse(
    OrderTransitionErrorSerializer, description="The order's status does not allow this."
)


class OrderPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class ProductListApi(APIView):
    """`/api/products/`: the catalogue, public; the only source of an order line's price."""

    permission_classes = [AllowAny]
    pagination_class = OrderPagination

    @extend_schema(
        operation_id="products_list",
        responses={
            200: ProductSerializer(many=True),
            401: OpenApiResponse(
                OrderErrorSerializer,
                description="A bad token was sent (send none: the catalogue is public).",
            ),
            404: OpenApiResponse(OrderErrorSerializer, description="A page past the end."),
        },
    )
    def get(self, request):
        """List the products one can order, by sku, with their current price."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.product_list(), request, view=self)
        return paginator.get_paginated_response(ProductSerializer(page, many=True).data)


class OrderListCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [BoundedJSONParser]
    pagination_class = OrderPagination

    @extend_schema(
        operation_id="orders_list",
        parameters=[OrderListFilterSerializer],
        responses={
            200: OrderOutputSerializer(many=True),
            400: OpenApiResponse(OrderErrorSerializer, description="Unknown status."),
            401: ERRORS[401],
        },
    )
    def get(self, request):
        """List the caller's own orders, newest first, optionally of one status."""
        filters = OrderListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = selectors.order_list(user=request.user, **filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="orders_create",
        request=OrderCreateInputSerializer,
        responses={
            201: OrderOutputSerializer,
            400: OpenApiResponse(
                OrderErrorSerializer,
                description="Names each bad field and line: an unknown sku, a sent unit_price.",
            ),
            401: ERRORS[401],
            413: OpenApiResponse(OrderErrorSerializer, description="Body too large."),
        },
    )
    def post(self, request):
        """Place an order of catalogue skus; the server prices the lines and computes the total."""
        payload = OrderCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        order = services.order_create(user=request.user, items=payload.validated_data["items"])
        order = selectors.order_get(user=request.user, order_id=order.id)
        return Response(OrderOutputSerializer(order).data, status=status.HTTP_201_CREATED)


class OrderDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="orders_retrieve",
        parameters=[ORDER_ID],
        responses={200: OrderOutputSerializer, **ERRORS},
    )
    def get(self, request, order_id: str):
        """Read one of the caller's own orders."""
        order = selectors.order_get(user=request.user, order_id=order_id)
        return Response(OrderOutputSerializer(order).data)


class OrderCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="orders_cancel",
        request=None,
        parameters=[ORDER_ID],
        responses={200: OrderOutputSerializer, **ERRORS, 409: TRANSITION_ERROR},
    )
    def post(self, request, order_id: str):
        """Cancel one of the caller's own pending orders."""
        order = services.order_cancel(order_id=order_id, user=request.user)
        return Response(OrderOutputSerializer(_reloaded(order)).data)


class OrderShipApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="orders_ship",
        request=None,
        parameters=[ORDER_ID],
        responses={
            200: OrderOutputSerializer,
            **ERRORS,
            403: OpenApiResponse(OrderErrorSerializer, description="Staff only."),
            409: TRANSITION_ERROR,
        },
    )
    def post(self, request, order_id: str):
        """Mark a paid order as shipped (staff only)."""
        order = services.order_ship(order_id=order_id)
        return Response(OrderOutputSerializer(_reloaded(order)).data)


def _reloaded(order):
    """Return `order` with its items fetched in one query, for the response body."""
    return type(order).objects.prefetch_related("items").get(pk=order.pk)
